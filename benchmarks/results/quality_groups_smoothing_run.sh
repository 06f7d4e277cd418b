#!/bin/bash
# smoothing 1 2 4 + group hold-out on the cases where the split changes
cd /tmp/snap
R=/work/main/benchmarks/results
export PYTHONPATH=/tmp/snap/src
for spec in "seismic:0" "seismic:1 2" "seismic-channels:0" "seismic-channels:1 2" "seismic-thinbeds:0" "seismic-thinbeds:1 2" "seismic-faults-noise:0" "seismic-faults-noise:1 2" "volve-velocity:0 1 2" "image-section:0 1 2" "reek-facies:0" "reek-facies:1 2" "reek-facies-2prop:0" "reek-facies-2prop:1 2"; do
  case=${spec%%:*}; seeds=${spec#*:}; tag=$(echo $case | tr - _)_s$(echo $seeds | tr -d ' ')
  echo "$(date +%T) start $case $seeds"
  python3 benchmarks/quality.py --cases $case --seeds $seeds --methods ours rf-raw rf-filters svm-filters --smoothing 1 2 4 --hold-out groups --threads 2 --data-dir /work/shared/data --reuse $R/quality.json $R/quality_band_statistics.json --reuse-methods rf-raw rf-filters svm-filters > /tmp/groups/$tag.log 2>&1
  cp benchmarks/results/quality.json /tmp/groups/quality_groups_smoothing_$tag.json
  echo "$(date +%T) done $case $seeds rc=$?"; grep -A8 "mean IoU" /tmp/groups/$tag.log | head -12
done
echo ALLDONE
