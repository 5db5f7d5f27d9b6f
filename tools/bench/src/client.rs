//! Where the server is, and a small blocking client for set-up work (fill, SCRIPT LOAD,
//! readiness probes); the measured load goes through `driver`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use corekv_shm::{ShmConnection, ShmError};

use crate::reply::{self, Reply};
use crate::Error;

/// A server address: TCP host and port, a Unix socket, or corekv's shared-memory socket.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(String, u16),
    Unix(PathBuf),
    Shm(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(h, p) => write!(f, "{h}:{p}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Shm(p) => write!(f, "shm:{}", p.display()),
        }
    }
}

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Shm(Box<ShmConnection>),
}

fn shm_io(e: ShmError) -> std::io::Error {
    match e {
        ShmError::Closed => std::io::ErrorKind::UnexpectedEof.into(),
        e => std::io::Error::other(e),
    }
}

impl Target {
    /// A connected, blocking stream (TCP_NODELAY on TCP).
    pub fn connect(&self) -> Result<Stream, Error> {
        let ctx = || format!("connect to {self}");
        match self {
            Target::Tcp(h, p) => {
                let s = TcpStream::connect((h.as_str(), *p)).map_err(Error::io(ctx()))?;
                s.set_nodelay(true).map_err(Error::io(ctx()))?;
                Ok(Stream::Tcp(s))
            }
            Target::Unix(path) => Ok(Stream::Unix(
                UnixStream::connect(path).map_err(Error::io(ctx()))?,
            )),
            Target::Shm(path) => Ok(Stream::Shm(Box::new(
                ShmConnection::connect(path).map_err(|e| Error::io(ctx())(shm_io(e)))?,
            ))),
        }
    }
}

impl Stream {
    pub fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
            // The server's socket ending is noticed instead.
            Stream::Shm(_) => Ok(()),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Shm(s) => s.read_raw(buf).map_err(shm_io),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Shm(s) => s.send_raw(buf).map(|()| buf.len()).map_err(shm_io),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocking connection that sends encoded requests and reads their replies whole.
pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
    len: usize,
}

impl Client {
    pub fn connect(target: &Target) -> Result<Client, Error> {
        let stream = target.connect()?;
        stream
            .set_timeout(Duration::from_secs(30))
            .map_err(Error::io("set read timeout"))?;
        Ok(Client {
            stream,
            buf: vec![0; 64 * 1024],
            len: 0,
        })
    }

    /// Sends `requests` (already RESP-encoded, `count` of them) and returns their replies'
    /// summaries and the raw bytes of the last one.
    pub fn pipeline(
        &mut self,
        requests: &[u8],
        count: usize,
    ) -> Result<(Vec<Reply>, Vec<u8>), Error> {
        self.stream
            .write_all(requests)
            .map_err(Error::io("send to server"))?;
        let mut replies = Vec::with_capacity(count);
        let mut last = Vec::new();
        while replies.len() < count {
            match reply::scan(&self.buf[..self.len])? {
                Some((n, r)) => {
                    last.clear();
                    last.extend_from_slice(&self.buf[..n]);
                    self.buf.copy_within(n..self.len, 0);
                    self.len -= n;
                    replies.push(r);
                }
                None => {
                    if self.len == self.buf.len() {
                        self.buf.resize(self.buf.len() * 2, 0);
                    }
                    let n = self
                        .stream
                        .read(&mut self.buf[self.len..])
                        .map_err(Error::io("read from server"))?;
                    if n == 0 {
                        return Err(Error::Server("server closed the connection".into()));
                    }
                    self.len += n;
                }
            }
        }
        Ok((replies, last))
    }

    /// Runs one command given as arguments; returns its raw reply, or the server's error.
    pub fn command(&mut self, args: &[&str]) -> Result<Vec<u8>, Error> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        let (replies, raw) = self.pipeline(&req, 1)?;
        if replies[0].error {
            return Err(Error::Server(format!(
                "{}: {}",
                args.join(" "),
                String::from_utf8_lossy(&raw).trim_end()
            )));
        }
        Ok(raw)
    }
}

/// The payload of a bulk-string reply (`$3\r\nabc\r\n` -> `abc`).
pub fn bulk_text(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let rest = text.strip_prefix('$')?;
    let (_, body) = rest.split_once("\r\n")?;
    Some(body.strip_suffix("\r\n")?.to_string())
}
