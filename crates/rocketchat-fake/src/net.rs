//! The fake's listening socket and open connections, kept where `FakeRocketChat::set_mode` can close them at once.
//!
//! `Mode::Down` must make the very next connection attempt fail with "connection refused". Had the serving task
//! owned the socket, closing it would wait until that task next ran: on a current-thread runtime the test's own
//! `connect()` comes first, lands in the still-open accept queue and is then reset instead of refused. So the
//! socket lives in a [`Gate`] that `close` empties synchronously, and each accepted stream lives in a slot of its own
//! so that keep-alive connections from before the outage are cut too, as they would be if the server had died.
//!
//! The gate can also play a load balancer that forgets idle connections ([`Gate::forget_idle_after`]): neither end
//! is told, and the next request on a forgotten connection is answered with a TCP reset before any response byte,
//! which is what a client that kept the connection in its pool (or was frozen, as a Lambda is) runs into.

use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;

use crate::lock;

/// The listening socket (absent while down), the accept loop's waker and the open connections.
pub(crate) struct Gate {
    addr: SocketAddr,
    /// Re-binding registers the new socket with the runtime the server runs on, whatever thread calls `open`.
    runtime: Handle,
    inner: Mutex<Inner>,
    idle: Arc<IdlePolicy>,
}

/// How long a connection may sit idle before it is forgotten, and how many were reset for it.
#[derive(Default)]
struct IdlePolicy {
    forget_after: Mutex<Option<Duration>>,
    resets: AtomicUsize,
}

struct Inner {
    listener: Option<TcpListener>,
    acceptor: Option<Waker>,
    connections: Vec<Weak<Mutex<Slot>>>,
}

impl Gate {
    /// Binds a free port on 127.0.0.1, and never any other address: the fake must not be reachable from outside.
    pub(crate) fn bind() -> io::Result<Arc<Self>> {
        let listener = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        Ok(Arc::new(Self {
            addr: listener.local_addr()?,
            runtime: Handle::current(),
            inner: Mutex::new(Inner {
                listener: Some(listener),
                acceptor: None,
                connections: Vec::new(),
            }),
            idle: Arc::default(),
        }))
    }

    /// From now on, a connection idle for longer than `idle` is forgotten: its next request gets a TCP reset.
    pub(crate) fn forget_idle_after(&self, idle: Option<Duration>) {
        *lock(&self.idle.forget_after) = idle;
    }

    /// How many requests were answered with a reset because their connection had been forgotten.
    pub(crate) fn forgotten_resets(&self) -> usize {
        self.idle.resets.load(Ordering::SeqCst)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Listens again on the same port, if closed.
    pub(crate) fn open(&self) -> io::Result<()> {
        let acceptor = {
            let mut inner = lock(&self.inner);
            if inner.listener.is_some() {
                return Ok(());
            }
            let _runtime = self.runtime.enter();
            inner.listener = Some(listen(self.addr)?);
            inner.acceptor.take()
        };
        // The accept loop parked itself while there was nothing to accept on.
        acceptor.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Closes the listening socket and every open connection before returning.
    pub(crate) fn close(&self) {
        let (listener, connections) = {
            let mut inner = lock(&self.inner);
            (inner.listener.take(), std::mem::take(&mut inner.connections))
        };
        drop(listener);
        for slot in connections.iter().filter_map(Weak::upgrade) {
            let (stream, waker) = {
                let mut slot = lock(&slot);
                (slot.stream.take(), slot.waker.take())
            };
            drop(stream);
            // Wake the connection's task so it sees the stream gone and ends, instead of waiting forever.
            waker.into_iter().for_each(Waker::wake);
        }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Conn, SocketAddr)>> {
        let mut inner = lock(&self.inner);
        inner.acceptor = Some(cx.waker().clone());
        let Some(listener) = &inner.listener else {
            return Poll::Pending;
        };
        let (stream, peer) = std::task::ready!(listener.poll_accept(cx))?;
        // Tracked under the same lock as the accept, so a concurrent `close` cannot miss this connection.
        let slot = Arc::new(Mutex::new(Slot {
            stream: Some(stream),
            waker: None,
            last_active: Instant::now(),
        }));
        inner.connections.retain(|c| c.strong_count() > 0);
        inner.connections.push(Arc::downgrade(&slot));
        Poll::Ready(Ok((Conn(slot, Arc::clone(&self.idle)), peer)))
    }
}

/// SO_REUSEADDR lets the port be bound again at once although connections the fake closed linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// What `axum::serve` accepts connections from.
pub(crate) struct GatedListener(Arc<Gate>);

impl GatedListener {
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        Self(gate)
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match poll_fn(|cx| self.0.poll_accept(cx)).await {
                Ok(accepted) => return accepted,
                // Accept errors (a client that gave up while queued, too many open files) are transient; axum's own
                // listener likewise waits a moment and tries again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.addr)
    }
}

struct Slot {
    /// `None` once the gate cut the connection.
    stream: Option<TcpStream>,
    /// The waker of the task serving the connection, to wake it when the stream is cut.
    waker: Option<Waker>,
    /// When a byte last went either way.
    last_active: Instant,
}

/// An accepted connection that [`Gate::close`] can cut from outside the task serving it.
pub(crate) struct Conn(Arc<Mutex<Slot>>, Arc<IdlePolicy>);

impl Conn {
    fn poll_stream<T>(
        &self,
        cx: &mut Context<'_>,
        io: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let mut slot = lock(&self.0);
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        match slot.stream.as_mut() {
            Some(stream) => io(Pin::new(stream), cx),
            None => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
        }
    }
}

impl Conn {
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            lock(&self.0).last_active = Instant::now();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = self.poll_stream(cx, |stream, cx| stream.poll_read(cx, buf));
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let forget_after = *lock(&self.1.forget_after);
            let mut slot = lock(&self.0);
            if forget_after.is_some_and(|idle| slot.last_active.elapsed() > idle) {
                // The request arrived on a connection the "load balancer" no longer knows: reset, answer nothing.
                if let Some(stream) = slot.stream.take() {
                    let _ = stream.set_zero_linger();
                }
                self.1.resets.fetch_add(1, Ordering::SeqCst);
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            slot.last_active = Instant::now();
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = self.poll_stream(cx, |stream, cx| stream.poll_write(cx, buf));
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = self.poll_stream(cx, |stream, cx| stream.poll_write_vectored(cx, bufs));
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_stream(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_stream(cx, |stream, cx| stream.poll_shutdown(cx))
    }
}
