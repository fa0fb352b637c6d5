"""Writes a CIFAR-10 set in the binary format (five training files and the test file) of random
pixels, for benchmarks: the content of the images does not change a training step's cost.
    random_cifar.py DIR [RECORDS_PER_FILE]   # writes DIR/cifar-10-batches-bin/, default 200 each
"""
import os
import random
import sys


def main():
    root, per_file = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    random.seed(0)
    d = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(d)
    for f, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        with open(os.path.join(d, name), "wb") as out:
            for r in range(per_file):
                # One label byte (cycling through the ten classes), then 3072 pixel bytes.
                out.write(bytes([(f * per_file + r) % 10]) + random.randbytes(3072))


if __name__ == "__main__":
    main()
