# Compile with Debian's JDK, then remove it: the image keeps the JRE and the classes only.
apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 openjdk-17-jdk-headless >/dev/null
javac --release 17 -d /opt/app /opt/app/App.java
apt-get purge -y -q --auto-remove -o Dpkg::Use-Pty=0 openjdk-17-jdk-headless >/dev/null
mkdir -p /opt/app/logs
