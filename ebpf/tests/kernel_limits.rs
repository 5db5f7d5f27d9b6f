//! What Linux does with an `sk_skb` reply whose length differs from the request it replaces
//! (needs root). These pin down the two limits of the front cache's program
//! (ARCHITECTURE.md, "eBPF front cache"): replies never longer than their request, and no
//! stream parser. Each test asserts today's behaviour (measured on 6.18); if a kernel
//! changes it, the test fails and names the limit that can go.
//!
//! The probe program (`bpf/length_probe.bpf.c`) rewrites every received skb into N bytes of
//! `x` and redirects it to the same socket's egress, as the front cache does with a GET.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use aya::maps::{Array, MapData, SockMap};
use aya::programs::SkSkb;
use aya::{include_bytes_aligned, Ebpf};

static PROBE: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/length_probe.bpf.o"));

const REQUEST: &[u8] = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";

/// The probe attached to a fresh sockmap holding one accepted socket, and its client.
struct Probe {
    reply_len: Array<MapData, u32>,
    client: TcpStream,
    server: TcpStream,
    _sockets: SockMap<MapData>,
    _ebpf: Ebpf,
}

impl Probe {
    /// Replies are `reply_len` bytes; `with_parser` adds the stream parser (one message per
    /// skb).
    fn start(with_parser: bool, reply_len: u32) -> Option<Probe> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading BPF programs needs root");
            return None;
        }
        let mut ebpf = Ebpf::load(PROBE).expect("load the probe");
        let mut sockets: SockMap<MapData> = ebpf
            .take_map("probe_sockets")
            .expect("probe_sockets")
            .try_into()
            .unwrap();
        let mut lengths: Array<MapData, u32> = ebpf
            .take_map("probe_reply_len")
            .expect("probe_reply_len")
            .try_into()
            .unwrap();
        lengths.set(0, reply_len, 0).unwrap();
        let mut names = vec!["probe_verdict"];
        if with_parser {
            names.push("probe_parser");
        }
        for name in names {
            let prog: &mut SkSkb = ebpf.program_mut(name).unwrap().try_into().unwrap();
            prog.load().unwrap();
            prog.attach(sockets.fd()).unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        for s in [&client, &server] {
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
        }
        sockets.set(0, &server.as_raw_fd(), 0).unwrap();
        Some(Probe {
            reply_len: lengths,
            client,
            server,
            _sockets: sockets,
            _ebpf: ebpf,
        })
    }

    /// Sends one request; returns what the client receives within the read timeout.
    fn round_trip(&mut self) -> Vec<u8> {
        self.client.write_all(REQUEST).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = self.client.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    fn readable(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.server.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one valid pollfd without waiting.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }
}

fn x(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

/// Control: a reply exactly as long as its request works with or without a parser, and
/// leaves TCP's accounting level.
#[test]
fn same_length_replies_work() {
    for parser in [false, true] {
        let Some(mut p) = Probe::start(parser, REQUEST.len() as u32) else {
            return;
        };
        for _ in 0..3 {
            assert_eq!(p.round_trip(), x(REQUEST.len()), "parser: {parser}");
        }
        assert!(!p.readable());
    }
}

/// Without a parser, a shorter reply is sent, but TCP's copied_seq moves by the reply's
/// length (tcp_eat_skb after the rewrite): the socket then polls readable with nothing to
/// read. The front cache pays this lag back with padding on the next passed request.
#[test]
fn shorter_reply_without_parser_leaves_phantom_bytes() {
    let Some(mut p) = Probe::start(false, 7) else {
        return;
    };
    assert_eq!(p.round_trip(), x(7));
    assert!(
        p.readable(),
        "kernel now accounts the lag properly: drop the padding"
    );
    let mut buf = [0u8; 64];
    p.server.set_nonblocking(true).unwrap();
    assert!(
        p.server.read(&mut buf).is_err(),
        "readable, yet nothing to read"
    );
}

/// Without a parser, a longer reply is sent, but copied_seq moves past what arrived: TCP no
/// longer wakes the socket for the next request, which is never seen (the connection
/// stalls). So the front cache never grows a reply.
#[test]
fn longer_reply_without_parser_stalls_the_next_request() {
    let Some(mut p) = Probe::start(false, 100) else {
        return;
    };
    assert_eq!(p.round_trip(), x(100));
    p.reply_len.set(0, 0, 0).unwrap(); // pass the next request up unchanged
    let lost = p.round_trip();
    let mut buf = [0u8; 64];
    let up = p.server.read(&mut buf);
    assert!(
        lost.is_empty() && up.is_err(),
        "kernel now grows replies safely: the front cache may serve longer values \
         (client got {lost:?}, user space {up:?})"
    );
}

/// With a parser, the psock sends `strp_msg->full_len` bytes (the request's framed length)
/// of a redirected skb, whatever the verdict made of it: a shorter reply goes out, then the
/// send of the missing bytes fails and breaks the psock (EPIPE: the next request is never
/// answered); a longer one is cut to the request's length. So the front cache has no parser.
#[test]
fn parser_sends_the_framed_length_not_the_reply() {
    let Some(mut p) = Probe::start(true, 7) else {
        return;
    };
    assert_eq!(p.round_trip(), x(7));
    assert!(
        p.round_trip().is_empty(),
        "kernel now sends a shorter rewritten message and goes on: a parser can frame GETs"
    );

    let Some(mut p) = Probe::start(true, 100) else {
        return;
    };
    assert_eq!(
        p.round_trip(),
        x(REQUEST.len()),
        "kernel now sends a longer rewritten message whole"
    );
}
