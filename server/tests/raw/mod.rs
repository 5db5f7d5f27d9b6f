//! A small RESP2/RESP3 client over a raw TCP (or any) stream, for byte-level protocol tests:
//! sends exact bytes and parses replies exactly as they arrive.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// One reply as it was on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` (RESP2 null bulk).
    NullBulk,
    /// `*-1` (RESP2 null array).
    NullArray,
    /// `_` (RESP3 null).
    Null,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Double(String),
    Bool(bool),
    /// `=<len>\r\n<fmt>:<text>`: the format and the text.
    Verbatim(String, String),
    Push(Vec<Resp>),
}

impl Resp {
    pub fn bulk(s: &str) -> Resp {
        Resp::Bulk(s.as_bytes().to_vec())
    }

    /// The text of a bulk, simple or verbatim reply.
    pub fn text(&self) -> String {
        match self {
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Simple(s) | Resp::Verbatim(_, s) => s.clone(),
            other => panic!("not a text reply: {other:?}"),
        }
    }

    /// Looks a key up in a map reply (RESP3 map, or RESP2 flat key/value array).
    pub fn get(&self, key: &str) -> Option<&Resp> {
        match self {
            Resp::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Resp::Bulk(b) if b == key.as_bytes()))
                .map(|(_, v)| v),
            Resp::Array(items) => items
                .chunks(2)
                .find(|p| matches!(&p[0], Resp::Bulk(b) if b == key.as_bytes()))
                .map(|p| &p[1]),
            _ => None,
        }
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes a command given as text arguments.
pub fn encode_str(args: &[&str]) -> Vec<u8> {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode(&bytes)
}

pub struct Raw {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    pub fn new(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Resp {
        self.send(&encode_str(args));
        self.read()
    }

    /// Sends one command with binary arguments and reads its reply.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Resp {
        self.send(&encode(args));
        self.read()
    }

    /// One CRLF-terminated line without its CRLF; panics on EOF or timeout.
    pub fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .expect("read a reply line");
        assert!(n > 0, "connection closed while a reply was expected");
        assert!(line.ends_with(b"\r\n"), "reply line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("utf-8 reply line")
    }

    fn read_exact_crlf(&mut self, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len + 2];
        self.reader
            .read_exact(&mut data)
            .expect("read bulk payload");
        assert_eq!(&data[len..], b"\r\n", "bulk payload not followed by CRLF");
        data.truncate(len);
        data
    }

    /// Reads one complete reply.
    pub fn read(&mut self) -> Resp {
        let line = self.read_line();
        let (tag, rest) = line.split_at(1);
        let n = || {
            rest.parse::<i64>()
                .unwrap_or_else(|_| panic!("bad length in {line:?}"))
        };
        match tag {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(n()),
            "$" if n() < 0 => Resp::NullBulk,
            "$" => Resp::Bulk(self.read_exact_crlf(n() as usize)),
            "*" if n() < 0 => Resp::NullArray,
            "*" => Resp::Array((0..n()).map(|_| self.read()).collect()),
            "~" => Resp::Set((0..n()).map(|_| self.read()).collect()),
            ">" => Resp::Push((0..n()).map(|_| self.read()).collect()),
            "%" => Resp::Map((0..n()).map(|_| (self.read(), self.read())).collect()),
            "_" => Resp::Null,
            "," => Resp::Double(rest.to_string()),
            "#" => Resp::Bool(rest == "t"),
            "=" => {
                let data = String::from_utf8(self.read_exact_crlf(n() as usize)).unwrap();
                let (fmt, text) = data.split_at(4);
                assert!(fmt.ends_with(':'), "bad verbatim header {data:?}");
                Resp::Verbatim(fmt[..3].to_string(), text.to_string())
            }
            _ => panic!("unknown reply type in line {line:?}"),
        }
    }

    /// Whether the server closes the connection within `within` (EOF or reset), with nothing
    /// more sent first. Panics if it sends more data.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 1];
        let r = self.reader.read(&mut b);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match r {
            Ok(0) => true,
            Ok(_) => panic!(
                "unexpected data {:?} while expecting the connection to close",
                b[0] as char
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(_) => true,
        }
    }

    /// Whether nothing at all arrives within `within` (the connection stays open and silent).
    pub fn silent_for(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 1];
        let r = self.reader.read(&mut b);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        matches!(r, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
