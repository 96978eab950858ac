mkdir -p /var/lib/volume-app
chown 10002:10002 /var/lib/volume-app
chmod 0700 /var/lib/volume-app
