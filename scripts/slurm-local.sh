#!/usr/bin/env bash
# A single-node Slurm on localhost, for `lab sweep --slurm` tests: munge + slurmctld + slurmd
# with a minimal slurm.conf. Needs root (it writes /etc/slurm and starts daemons).
#   scripts/slurm-local.sh install   apt-get install slurm-wlm munge (Debian/Ubuntu)
#   scripts/slurm-local.sh start     write the config, start the daemons, wait until the node is idle
#   scripts/slurm-local.sh stop      stop the daemons this script started
#   scripts/slurm-local.sh status    sinfo
# Safe to call `start` twice: it does nothing when a controller already answers.
set -euo pipefail
CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}"
STATE="${LAB_SLURM_STATE:-/var/lib/lab-slurm}"
NODE="$(hostname -s)"

die() { echo "slurm-local: $*" >&2; exit 1; }

install() {
  command -v apt-get >/dev/null || die "apt-get not found; install slurm-wlm and munge with your package manager"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
}

write_conf() {
  local cpus mem
  cpus="$(nproc)"
  # Leave a little memory for the daemons; Slurm refuses a node that reports less than configured.
  mem="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
  mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat > "$CONF" <<CONF
# Written by lab's scripts/slurm-local.sh: one node, this machine, for tests.
ClusterName=lab
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  if munge -n >/dev/null 2>&1 && unmunge < <(munge -n) >/dev/null 2>&1; then return; fi
  [ -f /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged" || munged --force
  else
    munged --force
  fi
  for _ in $(seq 20); do munge -n >/dev/null 2>&1 && return; sleep 0.5; done
  die "munged did not start (see /var/log/munge/munged.log)"
}

start() {
  command -v slurmctld >/dev/null || die "slurmctld not found: run \`$0 install\` first"
  [ "$(id -u)" = 0 ] || die "needs root (it writes $CONF and starts daemons)"
  if scontrol ping 2>/dev/null | grep -q UP; then echo "slurm-local: a controller already answers"; sinfo; return; fi
  write_conf
  start_munge
  slurmctld -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then sinfo; return; fi
    sleep 0.5
  done
  sinfo || true
  tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  die "the node did not become idle within 30 s"
}

stop() {
  for pid_file in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
