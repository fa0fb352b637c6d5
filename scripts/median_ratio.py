"""The summary line of a side-by-side benchmark: the median steps/s of each side over its rounds
and their ratio.
    median_ratio.py "LAB_RATES" "PYTORCH_RATES"   # each a space-separated list of steps/s
"""
import statistics
import sys

lab = [float(x) for x in sys.argv[1].split()]
py = [float(x) for x in sys.argv[2].split()]
ml, mp = statistics.median(lab), statistics.median(py)
print(
    f"median: lab {ml:.4g} steps/s ({1 / ml:.3g} s/step), pytorch {mp:.4g} steps/s ({1 / mp:.3g} s/step), "
    f"ratio lab/pytorch {ml / mp:.3f}"
)
