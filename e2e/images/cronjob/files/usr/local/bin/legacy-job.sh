#!/bin/sh
# A legacy CronJob: appends to its log under /var/log, then shows it.
set -eu
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) legacy-job ran as uid $(id -u)" >>/var/log/legacy-job/job.log
cat /var/log/legacy-job/job.log
