useradd --uid 1000 --user-group --home-dir /home/app --shell /usr/sbin/nologin app
mkdir -p /home/app/data
chown -R app:app /home/app
