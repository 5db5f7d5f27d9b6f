//! Fuzz target for the streaming RESP request parser (`corekv_net::resp::RequestParser`).
//!
//! Input layout: the first byte picks where the rest is split into two chunks, so every input
//! exercises the parser's streaming state (a command cut anywhere, including mid-header and
//! mid-payload). The rest is the byte stream a client would send.
//!
//! Invariants checked:
//! - the parser never panics and never loops without consuming input;
//! - every command it returns is non-empty (empty requests are skipped);
//! - the arguments returned never hold more bytes than the input had, and never more than
//!   the bytes taken out of the buffer;
//! - `pending_bytes()` is 0 once a command is returned, and otherwise bounded by the bytes
//!   read since the last command plus a small overhead per argument;
//! - with the default limits, reading in two chunks gives exactly the commands and the error
//!   that reading everything at once gives (for inputs under the 64 KiB header/inline limit,
//!   where Redis's own "too big" checks depend on how the input arrived);
//! - tiny limits (`max_bulk_len` 16, `max_args` 4) only ever cut the stream short with a
//!   length error: the commands before it are the ones parsed without limits;
//! - after an error the driver stops, as a connection does.

#![no_main]

use bytes::{Bytes, BytesMut};
use corekv_net::resp::parser::INLINE_MAX;
use corekv_net::resp::{Limits, ProtocolError, RequestParser};
use libfuzzer_sys::fuzz_target;

/// Most memory overhead `pending_bytes()` may count per argument beyond its bytes.
const ARG_OVERHEAD_MAX: usize = 64;

/// What one client stream parsed into.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    commands: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
}

/// Feeds `chunks` one after another into a fresh parser, draining every complete command after
/// each chunk, and checks the per-call invariants.
fn run(limits: Limits, chunks: &[&[u8]]) -> Outcome {
    let total_input: usize = chunks.iter().map(|c| c.len()).sum();
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut commands = Vec::new();
    let mut arg_bytes = 0usize;
    let mut consumed_at_last = 0usize;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let before = buf.len();
            let result = parser.next(&mut buf);
            assert!(buf.len() <= before, "the parser grew the buffer");
            let consumed = fed - buf.len();
            // Everything held for the command being assembled was read after the last
            // complete command: its bytes plus a bounded overhead per argument (each argument
            // takes at least 6 input bytes, `$0\r\n\r\n`).
            let since_last = consumed - consumed_at_last;
            let pending = parser.pending_bytes();
            assert!(
                pending <= since_last + since_last / 6 * ARG_OVERHEAD_MAX,
                "pending_bytes {pending} for {since_last} bytes read since the last command"
            );
            match result {
                Ok(Some(cmd)) => {
                    assert!(
                        buf.len() < before,
                        "a command was returned without consuming input"
                    );
                    assert!(!cmd.is_empty(), "empty command returned");
                    arg_bytes += cmd.iter().map(|a| a.len()).sum::<usize>();
                    assert!(
                        arg_bytes <= consumed,
                        "args hold {arg_bytes} bytes but only {consumed} were consumed"
                    );
                    assert!(
                        arg_bytes <= total_input,
                        "args hold {arg_bytes} bytes, input had {total_input}"
                    );
                    assert_eq!(pending, 0, "pending_bytes left after a complete command");
                    consumed_at_last = consumed;
                    commands.push(cmd);
                }
                Ok(None) => break,
                // A connection answers the error and closes: nothing more is parsed.
                Err(error) => {
                    return Outcome {
                        commands,
                        error: Some(error),
                    }
                }
            }
        }
    }
    Outcome {
        commands,
        error: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let split = first as usize % (input.len() + 1);
    let (a, b) = input.split_at(split);

    let streamed = run(Limits::default(), &[a, b]);
    if input.len() <= INLINE_MAX {
        let whole = run(Limits::default(), &[input]);
        assert_eq!(
            streamed, whole,
            "two chunks split at {split} parse differently"
        );
    }

    // Limits only ever add an error: up to it, parsing is the same as without them.
    let tiny = Limits {
        max_bulk_len: 16,
        max_args: 4,
    };
    let limited = run(tiny, &[a, b]);
    if limited.error.is_none() {
        assert_eq!(
            limited, streamed,
            "limits changed a stream they did not reject"
        );
    } else {
        assert!(
            streamed.commands.starts_with(&limited.commands),
            "limits changed the commands before the error"
        );
        if limited.error != streamed.error {
            assert!(
                matches!(
                    limited.error,
                    Some(ProtocolError::InvalidMultibulkLength | ProtocolError::InvalidBulkLength)
                ),
                "unexpected error under limits: {:?}",
                limited.error
            );
        }
    }
});
