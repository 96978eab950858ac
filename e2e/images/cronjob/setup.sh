mkdir -p /var/log/legacy-job
