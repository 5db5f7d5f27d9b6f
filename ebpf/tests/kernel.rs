//! The BPF programs against real sockets (needs root): a cached GET is answered by the
//! kernel without user space reading it; everything else reaches user space unchanged.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use corekv_ebpf::{FrontCache, Settings};

fn load() -> Option<Arc<FrontCache>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: loading BPF programs needs root");
        return None;
    }
    let settings = Settings {
        max_entries: 64,
        max_key_bytes: 64,
        max_value_bytes: 1024,
    };
    Some(Arc::new(
        FrontCache::load(settings).expect("load the BPF programs"),
    ))
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (client, server)
}

fn get(key: &str) -> Vec<u8> {
    format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
}

fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn cached_get_is_answered_in_kernel_and_misses_pass() {
    let Some(cache) = load() else { return };
    let (mut client, mut server) = pair();
    let mut conn = cache
        .register(std::os::fd::AsRawFd::as_raw_fd(&server), 0, 0)
        .unwrap();
    assert!(cache.fill(b"hot", b"value!", 1, 0));

    client.write_all(&get("hot")).unwrap();
    assert_eq!(read_exact(&mut client, 12), b"$6\r\nvalue!\r\n");
    client
        .write_all(b"*2\r\n$3\r\nget\r\n$3\r\nhot\r\n")
        .unwrap();
    assert_eq!(read_exact(&mut client, 12), b"$6\r\nvalue!\r\n");
    assert_eq!(cache.stats().hits, 2);

    // A miss reaches user space unchanged, behind the padding that makes up for the two
    // shorter answers (see `shorter_answers_are_paid_back_with_padding`); until user space
    // publishes it answered, a hit behind it must wait too.
    let miss = get("cold");
    let lag = 2 * (get("hot").len() - 12);
    client.write_all(&miss).unwrap();
    client.write_all(&get("hot")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let both = read_exact(&mut server, lag + miss.len() + get("hot").len());
    assert_eq!(&both[..lag], vec![b'\n'; lag]);
    assert_eq!(&both[lag..lag + miss.len()], &miss[..]);
    server.write_all(b"$-1\r\n$6\r\nvalue!\r\n").unwrap();
    conn.publish(both.len() as u64, 0);
    assert_eq!(read_exact(&mut client, 17), b"$-1\r\n$6\r\nvalue!\r\n");

    // Kernel answers again once idle; once the slot is revoked the GET passes, though the
    // dead entry is still in the map.
    client.write_all(&get("hot")).unwrap();
    assert_eq!(read_exact(&mut client, 12), b"$6\r\nvalue!\r\n");
    cache.revoke(1);
    assert_eq!(cache.stats().entries, 0);
    client.write_all(&get("hot")).unwrap();
    let lag = get("hot").len() - 12;
    let mut padded = vec![b'\n'; lag];
    padded.extend(get("hot"));
    assert_eq!(read_exact(&mut server, padded.len()), padded);
    server.write_all(b"$-1\r\n").unwrap();
    let mut read = both.len() as u64 + padded.len() as u64;
    conn.publish(read, 0);
    assert_eq!(read_exact(&mut client, 5), b"$-1\r\n");

    // A refill at the same slot waits for the dead entry's removal, then serves again.
    assert!(
        !cache.fill(b"hot", b"new!", 1, 0),
        "the dead entry is still there"
    );
    cache.remove([&b"hot"[..], &b"never-cached"[..]]);
    assert!(cache.fill(b"hot", b"new!", 1, 0));
    client.write_all(&get("hot")).unwrap();
    assert_eq!(read_exact(&mut client, 10), b"$4\r\nnew!\r\n");

    // Revocation is per slot: another key's entry at another slot keeps being served.
    assert!(cache.fill(b"other", b"o", 2, 0));
    cache.revoke(1);
    client.write_all(&get("other")).unwrap();
    assert_eq!(read_exact(&mut client, 7), b"$1\r\no\r\n");
    client.write_all(&get("hot")).unwrap();
    let lag = (get("hot").len() - 10) + (get("other").len() - 7);
    let mut padded = vec![b'\n'; lag];
    padded.extend(get("hot"));
    assert_eq!(read_exact(&mut server, padded.len()), padded);
    read += padded.len() as u64;
    server.write_all(b"$-1\r\n").unwrap();
    conn.publish(read, 0);
    assert_eq!(read_exact(&mut client, 5), b"$-1\r\n");
    drop(conn);
}

#[test]
fn bytes_queued_before_joining_do_not_stall_the_connection() {
    let Some(cache) = load() else { return };
    let (mut client, mut server) = pair();
    // The client's first request is queued before the socket joins the sockmap.
    client.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut conn = cache
        .register(std::os::fd::AsRawFd::as_raw_fd(&server), 0, 0)
        .unwrap();
    assert!(cache.fill(b"k", b"v", 1, 0));
    assert_eq!(read_exact(&mut server, 14), b"*1\r\n$4\r\nPING\r\n");
    server.write_all(b"+PONG\r\n").unwrap();
    conn.publish(14, 0);
    assert_eq!(read_exact(&mut client, 7), b"+PONG\r\n");
    client.write_all(&get("k")).unwrap();
    assert_eq!(read_exact(&mut client, 7), b"$1\r\nv\r\n");
}

#[test]
fn kernel_and_user_space_replies_alternate() {
    let Some(cache) = load() else { return };
    let (mut client, mut server) = pair();
    server.set_nodelay(true).unwrap();
    client.set_nodelay(true).unwrap();
    let mut conn = cache
        .register(std::os::fd::AsRawFd::as_raw_fd(&server), 0, 0)
        .unwrap();
    assert!(cache.fill(b"hot", b"value!", 1, 0));
    let (mut read, mut written) = (0u64, 0u64);
    for i in 0..2000 {
        // A miss answered by "user space" (this thread), then a kernel hit; the miss brings
        // the padding for the previous hit's shorter reply.
        client.write_all(&get("cold")).unwrap();
        let pad = if i == 0 { 0 } else { get("hot").len() - 12 };
        let req = read_exact(&mut server, pad + get("cold").len());
        assert_eq!(req[pad..], get("cold"));
        read += req.len() as u64;
        let mut spins = 0;
        while !conn.kernel_replies_sent(written) {
            spins += 1;
            assert!(spins < 100_000, "kernel reply {i} never reached the socket");
            std::thread::yield_now();
        }
        server.write_all(b"$-1\r\n").unwrap();
        written += 5;
        conn.publish(read, 0);
        assert_eq!(read_exact(&mut client, 5), b"$-1\r\n");
        client.write_all(&get("hot")).unwrap();
        assert_eq!(
            read_exact(&mut client, 12),
            b"$6\r\nvalue!\r\n",
            "round {i}"
        );
    }
}

#[test]
fn replies_longer_than_their_request_are_left_to_user_space() {
    let Some(cache) = load() else { return };
    let (mut client, mut server) = pair();
    let _conn = cache
        .register(std::os::fd::AsRawFd::as_raw_fd(&server), 0, 0)
        .unwrap();
    // GET k is 20 bytes: a 13-byte value (20-byte reply) fits, a 14-byte one does not.
    assert!(cache.fill(b"k", &[b'x'; 13], 1, 0));
    assert!(!cache.fill(b"l", &[b'x'; 14], 1, 0));
    client.write_all(&get("k")).unwrap();
    let mut reply = b"$13\r\n".to_vec();
    reply.extend_from_slice(&[b'x'; 13]);
    reply.extend_from_slice(b"\r\n");
    assert_eq!(read_exact(&mut client, reply.len()), reply);
    client.write_all(&get("l")).unwrap();
    assert_eq!(read_exact(&mut server, get("l").len()), get("l"));
}

fn readable(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one valid pollfd without waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// A kernel answer shorter than its request leaves TCP counting the difference as unread
/// (the socket polls readable with nothing to read, which would make corekv's reads spin);
/// the next request passed at a request boundary brings the padding that settles it.
#[test]
fn shorter_answers_are_paid_back_with_padding() {
    let Some(cache) = load() else { return };
    let (mut client, mut server) = pair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&server);
    let mut conn = cache.register(fd, 0, 0).unwrap();
    assert!(cache.fill(b"hot", b"v", 1, 0));
    assert!(!readable(fd));
    for _ in 0..3 {
        client.write_all(&get("hot")).unwrap();
        assert_eq!(read_exact(&mut client, 7), b"$1\r\nv\r\n");
    }
    assert!(
        readable(fd),
        "TCP counts the unanswered request bytes as unread"
    );

    let lag = 3 * (get("hot").len() - 7);
    client.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut expect = vec![b'\n'; lag];
    expect.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(read_exact(&mut server, expect.len()), expect);
    assert!(!readable(fd), "the padding settled the count");
    server.write_all(b"+PONG\r\n").unwrap();
    conn.publish(expect.len() as u64, 0);
    assert_eq!(read_exact(&mut client, 7), b"+PONG\r\n");

    // Answers stop once the lag would outgrow one padding; that request passes and pays it.
    let step = get("hot").len() - 7;
    let answers = 512 / step;
    for _ in 0..answers {
        client.write_all(&get("hot")).unwrap();
        assert_eq!(read_exact(&mut client, 7), b"$1\r\nv\r\n");
    }
    client.write_all(&get("hot")).unwrap();
    let mut expect = vec![b'\n'; answers * step];
    expect.extend(get("hot"));
    assert_eq!(read_exact(&mut server, expect.len()), expect);
    assert!(!readable(fd));
}
