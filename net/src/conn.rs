//! Buffered request/reply I/O for one client connection over any [`Transport`].
//!
//! Reads are batched: every complete command already in the read buffer is handed out at once,
//! so a pipelined burst is executed (and its cross-shard work squashed) as one batch, and its
//! replies leave in one write.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::resp::{Limits, ProtocolError, RequestParser};
use crate::transport::Transport;

const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed by peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("Protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("client query buffer exceeds client-query-buffer-limit")]
    QueryBufferLimit,
}

pub struct ClientIo<T: Transport> {
    stream: T,
    read_buf: BytesMut,
    /// Landing area for ordinary reads; copying the bytes read out of it is cheaper than
    /// zeroing fresh buffer space before every read.
    scratch: Box<[u8]>,
    parser: RequestParser,
    /// Error found after some complete commands; reported once those have run.
    deferred: Option<ProtocolError>,
    query_buffer_limit: usize,
    /// Encoded replies waiting for the next [`ClientIo::flush`].
    pub out: Vec<u8>,
    /// Bytes read from and written to the transport since the connection began.
    read_total: u64,
    written_total: u64,
}

impl<T: Transport> ClientIo<T> {
    pub fn new(stream: T, limits: Limits, query_buffer_limit: usize) -> Self {
        ClientIo {
            stream,
            read_buf: BytesMut::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            parser: RequestParser::new(limits),
            deferred: None,
            query_buffer_limit,
            out: Vec::new(),
            read_total: 0,
            written_total: 0,
        }
    }

    pub fn transport(&self) -> &T {
        &self.stream
    }

    pub fn set_limits(&mut self, limits: Limits, query_buffer_limit: usize) {
        self.parser.set_limits(limits);
        self.query_buffer_limit = query_buffer_limit;
    }

    /// Bytes read from the transport so far.
    pub fn bytes_read(&self) -> u64 {
        self.read_total
    }

    /// Bytes written to the transport so far.
    pub fn bytes_written(&self) -> u64 {
        self.written_total
    }

    /// Bytes held for requests not yet executed (`qbuf` in `CLIENT LIST`).
    pub fn query_buffer_len(&self) -> usize {
        self.read_buf.len() + self.parser.pending_bytes()
    }

    /// Waits until at least one command is complete and appends all complete ones to `cmds`,
    /// at most `max` of them.
    pub async fn read_batch(
        &mut self,
        cmds: &mut Vec<Vec<Bytes>>,
        max: usize,
    ) -> Result<(), ReadError> {
        loop {
            self.parse_buffered(cmds, max)?;
            if !cmds.is_empty() {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Appends the complete commands already buffered to `cmds` (at most `max`), reading
    /// nothing. With [`ClientIo::read_more`] it makes a read loop that can be interrupted at
    /// any await (a client that also receives pushes).
    pub fn parse_buffered(
        &mut self,
        cmds: &mut Vec<Vec<Bytes>>,
        max: usize,
    ) -> Result<(), ReadError> {
        if let Some(err) = self.deferred.take() {
            return Err(err.into());
        }
        while cmds.len() < max {
            match self.parser.next(&mut self.read_buf) {
                Ok(Some(cmd)) => cmds.push(cmd),
                Ok(None) => break,
                Err(e) if cmds.is_empty() => return Err(e.into()),
                Err(e) => {
                    self.deferred = Some(e);
                    break;
                }
            }
        }
        if cmds.is_empty() && self.query_buffer_len() > self.query_buffer_limit {
            return Err(ReadError::QueryBufferLimit);
        }
        Ok(())
    }

    /// Reads whatever the client sends next into the buffer without parsing it, to notice a
    /// disconnection while the client waits (blocking commands). Dropping the future loses
    /// nothing, so it can race other events.
    pub async fn read_more(&mut self) -> Result<(), ReadError> {
        if self.query_buffer_len() > self.query_buffer_limit {
            return Err(ReadError::QueryBufferLimit);
        }
        let n = self.stream.read(&mut self.scratch).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.read_buf.extend_from_slice(&self.scratch[..n]);
        self.read_total += n as u64;
        Ok(())
    }

    async fn fill(&mut self) -> Result<(), ReadError> {
        let wanted = self.parser.wanted().saturating_sub(self.read_buf.len());
        let n = if wanted > READ_CHUNK {
            // A big argument: read straight into its reserved room, no extra copy.
            self.read_buf.reserve(wanted);
            let start = self.read_buf.len();
            self.read_buf.resize(start + wanted, 0);
            let res = self.stream.read(&mut self.read_buf[start..]).await;
            let n = *res.as_ref().unwrap_or(&0);
            self.read_buf.truncate(start + n);
            res?
        } else {
            let n = self.stream.read(&mut self.scratch).await?;
            self.read_buf.extend_from_slice(&self.scratch[..n]);
            n
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.read_total += n as u64;
        Ok(())
    }

    /// Drops the first `n` bytes of `out`: the caller wrote them to the transport itself.
    pub fn mark_written(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
        self.written_total += n as u64;
    }

    /// Waits until every byte written has left (a transport may queue writes, e.g. TCP
    /// with queued sends), and reports a failure. Call before dropping the connection.
    pub async fn finish(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    /// Writes out every encoded reply (the transport may still be sending them when this
    /// returns, see [`ClientIo::finish`]).
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let res = self.stream.write_all(&self.out).await;
        if res.is_ok() {
            self.written_total += self.out.len() as u64;
        }
        self.out.clear();
        if self.out.capacity() > 4 * 1024 * 1024 {
            // Do not keep a huge reply buffer around for an idle client.
            self.out.shrink_to(READ_CHUNK);
        }
        res
    }
}
