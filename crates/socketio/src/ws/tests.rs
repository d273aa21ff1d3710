use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};

use super::*;

/// A peer that sends what `incoming` holds and never reads.
struct Deaf {
    incoming: Vec<u8>,
    at: usize,
}

impl AsyncRead for Deaf {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.incoming.len() - self.at);
        buf[..n].copy_from_slice(&self.incoming[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Deaf {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

#[test]
fn pings_from_a_peer_that_does_not_read_cost_bounded_memory() {
    let mut incoming = BytesMut::new();
    for _ in 0..20_000 {
        frame::encode(
            &mut incoming,
            frame::PING,
            false,
            &[7; 125],
            Some([1, 2, 3, 4]),
        );
    }
    let peer = Deaf {
        incoming: incoming.to_vec(),
        at: 0,
    };
    let settings = Settings {
        role: Role::Server,
        max_message: 1 << 20,
        read_chunk: 4096,
        deflate: None,
    };
    let mut ws = WebSocket::new(peer, settings);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    // 2.6 MB of pings, every one read; the pongs stop at a buffer's worth.
    assert_eq!(ws.poll_read(&mut cx), Poll::Ready(Read::Ended));
    assert!(ws.buffered() < KEEP_CAPACITY + 200, "{}", ws.buffered());
}
