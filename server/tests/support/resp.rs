//! A raw RESP2/RESP3 connection for tests that need every frame as sent: pushes, several
//! frames for one command, exact bytes to compare with redis-server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A TCP or Unix socket (Unix clients are dealt round-robin to the executors, so tests can
/// place clients on every core).
pub enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn try_clone(&self) -> std::io::Result<Sock> {
        Ok(match self {
            Sock::Tcp(s) => Sock::Tcp(s.try_clone()?),
            Sock::Unix(s) => Sock::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_read_timeout(t),
            Sock::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One frame, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Frame>),
    Push(Vec<Frame>),
    Map(Vec<Frame>),
    Set(Vec<Frame>),
    Other(String),
}

impl Frame {
    /// The frame's bulk strings and integers as text (for compact assertions).
    pub fn words(&self) -> Vec<String> {
        match self {
            Frame::Array(items) | Frame::Push(items) | Frame::Set(items) | Frame::Map(items) => {
                items.iter().flat_map(Frame::words).collect()
            }
            Frame::Bulk(b) => vec![String::from_utf8_lossy(b).into_owned()],
            Frame::Int(n) => vec![n.to_string()],
            Frame::Simple(s) | Frame::Error(s) | Frame::Other(s) => vec![s.clone()],
            Frame::Null => vec!["(nil)".into()],
        }
    }
}

pub struct RespConn {
    reader: BufReader<Sock>,
    writer: Sock,
}

impl RespConn {
    pub fn connect(port: u16) -> RespConn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        RespConn::new(Sock::Tcp(s))
    }

    /// Connects to a Unix socket, waiting for the server to bind it (executor 0 binds it
    /// after the TCP listeners already answer).
    pub fn connect_unix(path: &Path) -> RespConn {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return RespConn::new(Sock::Unix(s)),
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("connect to {}: {e}", path.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    pub fn new(s: Sock) -> RespConn {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let writer = s.try_clone().expect("clone socket");
        RespConn {
            reader: BufReader::new(s),
            writer,
        }
    }

    pub fn send(&mut self, args: &[&str]) {
        self.send_bytes(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    }

    pub fn send_bytes(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).expect("send");
    }

    /// Sends a command and reads one frame.
    pub fn call(&mut self, args: &[&str]) -> Frame {
        self.send(args);
        self.read()
    }

    pub fn read(&mut self) -> Frame {
        self.read_raw().1
    }

    /// The next frame, or None if nothing arrives within `wait`.
    pub fn read_within(&mut self, wait: Duration) -> Option<Frame> {
        self.writer.set_read_timeout(Some(wait)).unwrap();
        let ready = self.reader.fill_buf().map(|b| !b.is_empty());
        self.writer
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match ready {
            Ok(true) => Some(self.read()),
            _ => None,
        }
    }

    /// True once the server has closed the connection (reading whatever is still queued).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.writer.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 65536];
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// One frame: its exact bytes and its parse.
    pub fn read_raw(&mut self) -> (Vec<u8>, Frame) {
        let mut raw = Vec::new();
        let frame = self.frame(&mut raw);
        (raw, frame)
    }

    fn line(&mut self, raw: &mut Vec<u8>) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read line");
        assert!(
            line.ends_with(b"\r\n"),
            "truncated reply: {raw:?} + {line:?}"
        );
        raw.extend_from_slice(&line);
        String::from_utf8_lossy(&line[..line.len() - 2]).into_owned()
    }

    fn frame(&mut self, raw: &mut Vec<u8>) -> Frame {
        let line = self.line(raw);
        let (kind, rest) = line.split_at(1);
        let n = || rest.parse::<i64>().expect("length");
        match kind {
            "+" => Frame::Simple(rest.into()),
            "-" => Frame::Error(rest.into()),
            ":" => Frame::Int(n()),
            "_" => Frame::Null,
            "$" if n() < 0 => Frame::Null,
            "$" => {
                let mut payload = vec![0u8; n() as usize + 2];
                self.reader.read_exact(&mut payload).expect("payload");
                raw.extend_from_slice(&payload);
                payload.truncate(payload.len() - 2);
                Frame::Bulk(payload)
            }
            "*" if n() < 0 => Frame::Null,
            "*" | ">" | "~" => {
                let items = (0..n()).map(|_| self.frame(raw)).collect();
                match kind {
                    "*" => Frame::Array(items),
                    ">" => Frame::Push(items),
                    _ => Frame::Set(items),
                }
            }
            "%" => Frame::Map((0..2 * n()).map(|_| self.frame(raw)).collect()),
            _ => Frame::Other(line.clone()),
        }
    }
}
