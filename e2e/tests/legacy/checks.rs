//! Readiness checks from the host to a pod's IP, over the node's bridge: what each legacy app
//! must answer to count as running. HTTP for the web apps, RESP (PING, SET, GET) for redis, and
//! the PostgreSQL wire protocol (startup, then a CREATE/INSERT/SELECT round trip) for postgres.
//! Each returns a one-line piece of evidence for the report, or an error.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use kube_harden_e2e::{Result, process};

fn connect(ip: IpAddr, port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

/// `GET /` answers 200 with a body containing `expect`.
pub fn http(ip: IpAddr, port: u16, expect: &str) -> Result<String> {
    let (status, body) = process::http_get(SocketAddr::new(ip, port), "/")?;
    if status != 200 || !body.contains(expect) {
        return Err(format!("GET / on {ip}:{port}: {status}, body {body:?}").into());
    }
    let line = body
        .lines()
        .find(|l| l.contains(expect))
        .unwrap_or(expect)
        .trim();
    Ok(format!(
        "GET / -> 200 \"{}\"",
        line.trim_start_matches("<h1>").trim_end_matches("</h1>")
    ))
}

/// Reads one RESP reply line (up to CRLF), and for a bulk string its payload too.
fn resp_reply(stream: &mut TcpStream) -> Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(format!("redis closed the connection after {line:?}").into());
        }
        line.push(byte[0]);
        if line.len() > 4096 {
            return Err("redis reply line too long".into());
        }
    }
    let line = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
    if let Some(len) = line.strip_prefix('$') {
        let len: i64 = len.parse()?;
        if len < 0 {
            return Ok("(nil)".to_owned());
        }
        let mut payload = vec![0u8; usize::try_from(len)? + 2];
        stream.read_exact(&mut payload)?;
        return Ok(String::from_utf8_lossy(&payload[..payload.len() - 2]).into_owned());
    }
    Ok(line)
}

/// redis answers PING, stores a key and reads it back.
pub fn redis(ip: IpAddr, port: u16) -> Result<String> {
    let mut stream = connect(ip, port)?;
    let mut ask = |command: &str| -> Result<String> {
        stream.write_all(format!("{command}\r\n").as_bytes())?;
        resp_reply(&mut stream)
    };
    let pong = ask("PING")?;
    let set = ask("SET legacy-check kept")?;
    let get = ask("GET legacy-check")?;
    if pong != "+PONG" || set != "+OK" || get != "kept" {
        return Err(format!("redis: PING {pong:?}, SET {set:?}, GET {get:?}").into());
    }
    Ok("PING -> PONG, SET then GET -> \"kept\"".to_owned())
}

/// One backend message: its type byte and body.
fn pg_message(stream: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if !(4..=1 << 20).contains(&len) {
        return Err(format!("postgres: bad message length {len}").into());
    }
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body)?;
    Ok((head[0], body))
}

/// The human part of an ErrorResponse: its `M` field.
fn pg_error(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|field| field.strip_prefix(b"M"))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Reads messages until ReadyForQuery; returns the first column of every DataRow.
fn pg_until_ready(stream: &mut TcpStream) -> Result<Vec<String>> {
    let mut values = Vec::new();
    loop {
        let (kind, body) = pg_message(stream)?;
        match kind {
            b'Z' => return Ok(values),
            b'E' => return Err(format!("postgres error: {}", pg_error(&body)).into()),
            b'R' if body.get(..4) != Some(&[0, 0, 0, 0]) => {
                return Err("postgres asks for a password (expected trust)".into());
            }
            b'D' if body.len() >= 6 => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                let value = usize::try_from(len)
                    .ok()
                    .and_then(|len| body.get(6..6 + len))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_else(|| "NULL".to_owned());
                values.push(value);
            }
            _ => {}
        }
    }
}

/// postgres accepts a connection as `postgres`, writes a row and reads it back (simple query
/// protocol, trust authentication as the image's entrypoint configures).
pub fn postgres(ip: IpAddr, port: u16) -> Result<String> {
    let mut stream = connect(ip, port)?;
    let params = b"user\0postgres\0database\0postgres\0\0";
    let mut startup = Vec::new();
    startup.extend_from_slice(&u32::try_from(8 + params.len())?.to_be_bytes());
    startup.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    startup.extend_from_slice(params);
    stream.write_all(&startup)?;
    pg_until_ready(&mut stream)?;
    let sql = "CREATE TABLE IF NOT EXISTS legacy_check (v text); \
               INSERT INTO legacy_check VALUES ('kept'); \
               SELECT v FROM legacy_check;\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&u32::try_from(4 + sql.len())?.to_be_bytes());
    query.extend_from_slice(sql.as_bytes());
    stream.write_all(&query)?;
    let rows = pg_until_ready(&mut stream)?;
    stream.write_all(&[b'X', 0, 0, 0, 4])?;
    if rows.first().map(String::as_str) != Some("kept") {
        return Err(format!("postgres: SELECT returned {rows:?}").into());
    }
    Ok("INSERT then SELECT -> \"kept\"".to_owned())
}
