#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian 12: slurm-wlm 22.05
# + munge), for the sweep tests and for trying `trldm sweep submit` locally.
#
#   scripts/slurm-cluster.sh start DIR   # writes DIR/slurm.conf, starts munged,
#                                        # slurmctld, slurmd; waits until the node is idle
#   scripts/slurm-cluster.sh status DIR  # daemons and sinfo
#   scripts/slurm-cluster.sh stop DIR    # stops the daemons by pid file
#
# Then: export SLURM_CONF=DIR/slurm.conf (start prints the line).
# Needs root and: apt-get install -y --no-install-recommends slurm-wlm munge libpmix2
# Idempotent: start on a running cluster and stop on a stopped one do nothing.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf
TIMEOUT=${SLURM_CLUSTER_TIMEOUT:-60}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

tail_logs() {
  for f in "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/munged.log; do
    [ -f "$f" ] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  return 0
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "slurm-cluster: timed out after ${limit}s waiting for $what" >&2
      tail_logs
      return 1
    fi
    sleep 0.2
  done
}

write_conf() {
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  [ "$mem" -gt 500 ] || mem=500
  mkdir -p "$dir/state" "$dir/spool"
  cat > "$conf.tmp" <<EOF
# Written by scripts/slurm-cluster.sh: a single-node test cluster.
ClusterName=trldm
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
MaxArraySize=1001
MinJobAge=300
KillWait=5
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

start() {
  for b in munged slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null || {
      echo "slurm-cluster: $b not found; install: apt-get install -y --no-install-recommends slurm-wlm munge libpmix2" >&2
      exit 1
    }
  done
  [ "$(id -u)" -eq 0 ] || { echo "slurm-cluster: needs root (daemons run as root here)" >&2; exit 1; }
  if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && node_idle; then
    echo "slurm-cluster: already running in $dir"
    echo "export SLURM_CONF=$conf"
    return 0
  fi
  [ -f "$conf" ] || write_conf
  # munge: one per machine; reuse a running one.
  if ! pgrep -x munged >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    [ -f /etc/munge/munge.key ] || { echo "slurm-cluster: /etc/munge/munge.key missing (reinstall munge)" >&2; exit 1; }
    runuser -u munge -- munged
    wait_for 10 "munged" sh -c 'munge -n | unmunge'
  fi
  if ! alive "$dir/slurmctld.pid"; then
    nohup slurmctld -D -i -f "$conf" >>"$dir/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.pid"
  fi
  wait_for "$TIMEOUT" "slurmctld to answer (scontrol ping)" sh -c 'scontrol ping | grep -q UP'
  if ! alive "$dir/slurmd.pid"; then
    nohup slurmd -D -N localhost -f "$conf" >>"$dir/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.pid"
  fi
  wait_for "$TIMEOUT" "node localhost to become idle (sinfo)" node_idle
  echo "slurm-cluster: up in $dir ($(nproc) CPUs)"
  echo "export SLURM_CONF=$conf"
}

stop_pid() {
  local pidfile=$1 name=$2
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local end=$(( $(date +%s) + 10 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-cluster: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

stop() {
  # Jobs' processes go with slurmd's steps; cancel what is left first.
  if alive "$dir/slurmctld.pid"; then scancel --state=PENDING,RUNNING -u root >/dev/null 2>&1 || true; fi
  stop_pid "$dir/slurmd.pid" slurmd
  stop_pid "$dir/slurmctld.pid" slurmctld
  echo "slurm-cluster: stopped ($dir); munged is left running (shared by the machine)"
}

status() {
  for d in slurmctld slurmd; do
    if alive "$dir/$d.pid"; then echo "$d: running (pid $(cat "$dir/$d.pid"))"; else echo "$d: stopped"; fi
  done
  if alive "$dir/slurmctld.pid"; then sinfo -N -o '%N %T %c %m' || true; fi
  echo "export SLURM_CONF=$conf"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
