chown -R 10001:10001 /opt/vendor
chmod -R go-rwx /opt/vendor
