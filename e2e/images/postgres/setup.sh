# ssl-cert's postinst generated a snakeoil pair (the one pg_createcluster's `ssl = on` serves;
# this image's entrypoint runs initdb, TLS off) with a fresh random key and this host's name:
# replace it with the committed pair from files/ so the layer is the same on every build. A
# snakeoil pair is a throwaway by definition: test-only, never a secret (e2e/images/README.md).
staged=/usr/local/share/legacy-snakeoil
find /etc/ssl/certs -maxdepth 1 -lname ssl-cert-snakeoil.pem -delete
mv "$staged/ssl-cert-snakeoil.pem" /etc/ssl/certs/ssl-cert-snakeoil.pem
mv "$staged/ssl-cert-snakeoil.key" /etc/ssl/private/ssl-cert-snakeoil.key
rmdir "$staged"
chmod 644 /etc/ssl/certs/ssl-cert-snakeoil.pem
chown root:ssl-cert /etc/ssl/private/ssl-cert-snakeoil.key
chmod 640 /etc/ssl/private/ssl-cert-snakeoil.key
ln -s ssl-cert-snakeoil.pem \
  "/etc/ssl/certs/$(openssl x509 -hash -noout -in /etc/ssl/certs/ssl-cert-snakeoil.pem).0"
