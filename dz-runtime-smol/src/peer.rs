//! Links to other machines: one TCP connection per pair, opened on demand, with a writer that
//! batches every frame queued meanwhile into one write and a reader that hands frames on.
//!
//! A link is keyed by the peer's listen address. It is `Down`, `Dialing` or `Up`:
//! - a send to a `Down` peer dials it (unless a failed connect set a back-off that has not run
//!   out: then the send fails at once, counted);
//! - frames queue while `Dialing`; if the connect fails they are dropped and counted, and the
//!   back-off doubles (10 ms up to 2 s); a success resets it;
//! - the dialer writes `hello` (its id and listen address) and waits for `ack`; only then does
//!   data flow. If both machines dial each other at once, the connection dialed by the machine
//!   with the smaller address wins (that machine refuses the other's hello while it has a
//!   connection of its own, dialing or up), so one connection serves the pair;
//! - when a connection breaks, what was queued or being written is dropped and counted, and the
//!   next send dials again.
//!
//! Frames leave in batches without waiting for a timer: a worker running handlers is *corked*,
//! so the frames its handlers send (up to 64 handlers in a row) queue up, and when it is done it
//! writes each peer's queue in one non-blocking write from its own thread (under the link's
//! lock, so order holds). A send from outside a worker with nothing queued is written at once
//! the same way. Only what the socket does not take at once is left for the peer's writer task,
//! which also takes everything queued meanwhile in one write. A corked worker's queue for a peer
//! is also written as soon as it reaches 256 KiB, so that a long burst reaches the peer while
//! the handler is still sending.
//!
//! Messages are sealed in batches ([`send_sealed`]): a message joins the batch at the end of its
//! peer's queue if that batch is from the same sender, to the same receiver, through the same
//! handle's chain (so under the same key), and has room; otherwise that batch is sealed (closed)
//! and a new one opened, taking the link's next nonce. Anything else queued, and every write of
//! the queue, closes the batch first, so frames leave in the order they were queued.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_net::{TcpListener, TcpStream};
use dz_core::security::{LinkKey, LinkNonce};
use dz_core::{MachineHandle, MachineId, NodeId, RawHandle};
use futures_lite::io::{AsyncWriteExt, BufReader};

use crate::core::Core;
use crate::error::FrameError;
use crate::frame;
use crate::stats::{add, bump};
use crate::wire::{self, Wire};

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest first frame of a connection (a greeting is small).
const GREETING_MAX: usize = 64 * 1024;
/// How often a dial refused by a peer that dialed too is tried again, and how long to wait.
const MAX_REFUSALS: u32 = 20;
const REFUSED_RETRY: Duration = Duration::from_millis(50);
/// A write buffer bigger than this is not kept for reuse.
const KEEP_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Down,
    Dialing,
    Up,
}

struct Link {
    conn: Conn,
    /// Bumped by every new dial or accepted connection: tasks of an older one stand down.
    epoch: u64,
    /// Frames waiting for the writer, back to back.
    out: Vec<u8>,
    out_frames: u64,
    /// The messages, spawns and terminations in `out` (a batch holds many messages): counted as
    /// failed sends if the connection breaks before they are written.
    out_items: u64,
    /// Tells the current writer there is something to write; dropped to stop it.
    kick: Option<async_channel::Sender<()>>,
    backoff: Duration,
    retry_at: Option<Instant>,
    machine: Option<MachineId>,
    /// The connection (up or being dialed) is one this machine dialed.
    mine: bool,
    /// The writer has a batch out of `out`, being written.
    writing: bool,
    /// The connection's socket, for senders to write to at once when nothing is queued.
    socket: Option<Arc<Async<std::net::TcpStream>>>,
    /// The batch of sealed messages being gathered at the end of `out`, if any. It is sealed
    /// (closed) before anything else is queued behind it and before `out` is written.
    batch: Option<OpenBatch>,
}

/// A batch of messages on one link (one sender, one receiver, one handle's chain), gathered at
/// the end of a link's queue; its nonce is taken when it opens.
struct OpenBatch {
    from: NodeId,
    to: NodeId,
    chain: Arc<[NodeId]>,
    key: LinkKey,
    nonce: LinkNonce,
    at: wire::BatchAt,
    count: u32,
}

impl OpenBatch {
    /// Whether a message of `len` bytes from `from` through `to` may join this batch, whose
    /// queue is `out` long: same link, and the same key (a handle with the same chain but
    /// another key, made up, must not have its messages sealed under this one's), and room
    /// left, in the batch and in a frame of at most `max_frame` bytes (this machine's limit,
    /// taken for its peers' too).
    fn takes(&self, out: usize, max_frame: usize, from: &NodeId, to: &RawHandle, len: usize) -> bool {
        let chain = to.transport().shared_chain();
        let grown = out + wire::BATCH_ENTRY + len;
        self.count < wire::BATCH_MESSAGES
            && grown - self.at.plain <= wire::BATCH_BYTES
            && grown - self.at.frame - frame::HEADER + TAG_LEN <= max_frame
            && self.to == *to.id()
            && (Arc::ptr_eq(&self.chain, chain) || self.chain == *chain)
            && self.key == *to.key()
            && self.from == *from
    }
}

/// One peer machine.
pub(crate) struct Peer {
    address: String,
    link: Mutex<Link>,
}

impl Peer {
    fn lock(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every peer this machine has talked to, by listen address (a look-up map, never iterated in
/// an order that matters: listings are sorted).
#[derive(Default)]
pub(crate) struct Peers {
    map: Mutex<HashMap<String, Arc<Peer>>>,
}

impl Peers {
    fn get(&self, address: &str) -> Arc<Peer> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(peer) = map.get(address) {
            return Arc::clone(peer);
        }
        let peer = Arc::new(Peer {
            address: address.to_string(),
            link: Mutex::new(Link {
                conn: Conn::Down,
                epoch: 0,
                out: Vec::new(),
                out_frames: 0,
                out_items: 0,
                kick: None,
                backoff: MIN_BACKOFF,
                retry_at: None,
                machine: None,
                mine: false,
                writing: false,
                socket: None,
                batch: None,
            }),
        });
        map.insert(address.to_string(), Arc::clone(&peer));
        peer
    }

    /// The peers connected now, by address.
    pub(crate) fn connected(&self) -> Vec<MachineHandle> {
        let peers: Vec<Arc<Peer>> =
            self.map.lock().unwrap_or_else(PoisonError::into_inner).values().map(Arc::clone).collect();
        let mut handles: Vec<MachineHandle> = peers
            .iter()
            .filter_map(|peer| {
                let link = peer.lock();
                let machine = link.machine.clone().filter(|_| link.conn == Conn::Up)?;
                Some(MachineHandle::new(machine, peer.address.as_str()))
            })
            .collect();
        handles.sort();
        handles
    }

    /// Whether nothing is queued or being written for any connected peer.
    pub(crate) fn flushed(&self) -> bool {
        let peers: Vec<Arc<Peer>> =
            self.map.lock().unwrap_or_else(PoisonError::into_inner).values().map(Arc::clone).collect();
        peers.iter().all(|peer| {
            let link = peer.lock();
            link.conn != Conn::Up || (link.out.is_empty() && !link.writing)
        })
    }

    /// Forgets every peer (at shutdown).
    pub(crate) fn clear(&self) {
        let peers = std::mem::take(&mut *self.map.lock().unwrap_or_else(PoisonError::into_inner));
        for peer in peers.values() {
            let mut link = peer.lock();
            link.kick = None;
            link.socket = None;
            link.batch = None;
            link.conn = Conn::Down;
        }
    }
}

/// A send that [`admit`] refused (counted and logged already).
struct Refused;

/// Whether `bytes` more may be queued on `link` (the peer at `address`): `Ok(Some(epoch))` when
/// the peer was down and a dial starts (the caller queues, then spawns the dial of that epoch),
/// `Ok(None)` when it is up or being dialed and its backlog has room; `Err` when the send fails,
/// backing off after a failed connect or with a full backlog (counted in `send_failed`).
fn admit(core: &Core, address: &str, link: &mut Link, bytes: usize) -> Result<Option<u64>, Refused> {
    match link.conn {
        Conn::Down if link.retry_at.is_some_and(|at| Instant::now() < at) => {
            tracing::debug!(peer = address, "dz: send failed: backing off after a failed connect");
            bump(&core.stats.send_failed);
            Err(Refused)
        }
        Conn::Down => {
            link.conn = Conn::Dialing;
            link.epoch += 1;
            Ok(Some(link.epoch))
        }
        Conn::Dialing | Conn::Up if link.out.len() + bytes > core.config.max_backlog_bytes => {
            tracing::warn!(peer = address, "dz: send failed: the peer's backlog is full");
            bump(&core.stats.send_failed);
            Err(Refused)
        }
        Conn::Dialing | Conn::Up => Ok(None),
    }
}

/// Queues `frame` for the machine at `address`, dialing it if need be.
pub(crate) fn send(core: &Arc<Core>, address: &str, frame: Vec<u8>) {
    let peer = core.peers.get(address);
    let mut link = peer.lock();
    match admit(core, address, &mut link, frame.len()) {
        Err(Refused) => {}
        Ok(Some(epoch)) => {
            queue(&mut link, frame);
            drop(link);
            core.spawn_io(dial(Arc::clone(core), peer, epoch));
        }
        Ok(None) => {
            close_batch(&mut link);
            let was_empty = link.out.is_empty();
            if link.conn == Conn::Up && corked(&peer) {
                // A worker is running handlers: their frames leave together when it is done.
                queue(&mut link, frame);
                return;
            }
            if was_empty && !link.writing && link.conn == Conn::Up {
                // Nothing ahead of this frame: write it from this thread, and wake the writer
                // only for what the socket does not take now.
                match write_now(&link, &frame) {
                    Ok(n) if n == frame.len() => {
                        bump(&core.stats.frames_out);
                        add(&core.stats.bytes_out, n as u64);
                        bump(&core.stats.writes);
                        return;
                    }
                    Ok(n) => {
                        add(&core.stats.bytes_out, n as u64);
                        link.out.extend_from_slice(&frame[n..]);
                        link.out_frames += 1;
                        link.out_items += 1;
                    }
                    Err(_) => queue(&mut link, frame),
                }
                if let Some(kick) = &link.kick {
                    let _ = kick.try_send(());
                }
                return;
            }
            queue(&mut link, frame);
            if was_empty {
                if let Some(kick) = &link.kick {
                    // Full means the writer is already told.
                    let _ = kick.try_send(());
                }
            }
        }
    }
}

/// Queues a message (its JSON) from `from` for the node behind `to`, at the machine at
/// `address`, to be sealed: it joins the batch at the end of the link's queue if that batch is
/// on the same link and has room, else closes it and opens a new one (taking the link's next
/// nonce). Like [`send`], it dials a peer that is down; a corked worker's batches leave when it
/// is done (or whenever its queue for the peer reaches [`FLUSH_BYTES`]); a send with nothing
/// queued ahead is sealed and written at once.
pub(crate) fn send_sealed(core: &Arc<Core>, address: &str, from: &NodeId, to: &RawHandle, json: &[u8]) {
    let peer = corked_peer(address).unwrap_or_else(|| core.peers.get(address));
    let mut link = peer.lock();
    let Ok(dial_epoch) = admit(core, address, &mut link, json.len() + wire::BATCH_ENTRY) else { return };
    let was_empty = link.out.is_empty();
    if !gather(core, &mut link, from, to, json) {
        if dial_epoch.is_some() {
            link.conn = Conn::Down;
        }
        drop(link);
        tracing::warn!(peer = address, to = %to.id(), "dz: cannot frame a message (an id over 65,535 bytes, a chain over 255 links, or a message over 4 GiB); dropped");
        bump(&core.stats.send_failed);
        return;
    }
    if let Some(epoch) = dial_epoch {
        drop(link);
        core.spawn_io(dial(Arc::clone(core), peer, epoch));
        return;
    }
    if link.conn == Conn::Up && corked(&peer) {
        // A worker is running handlers: their messages leave together when it is done, or as
        // soon as a good write's worth is queued (so that the peer starts on them meanwhile).
        if link.out.len() >= FLUSH_BYTES && !link.writing {
            flush(core, &mut link);
        }
        return;
    }
    if was_empty && !link.writing && link.conn == Conn::Up {
        // Nothing ahead of this message: seal and write it from this thread.
        flush(core, &mut link);
        return;
    }
    if was_empty {
        if let Some(kick) = &link.kick {
            let _ = kick.try_send(());
        }
    }
}

/// What sealing adds at the end of a batch: its tag.
const TAG_LEN: usize = dz_core::security::SEAL_OVERHEAD - dz_core::security::NONCE_LEN;

/// While corked, a link's queue is written as soon as it holds this much.
const FLUSH_BYTES: usize = 256 * 1024;

/// Adds a message to the batch at the end of the link's queue, opening one if need be. `false`
/// if it cannot be framed (nothing is queued then).
fn gather(core: &Core, link: &mut Link, from: &NodeId, to: &RawHandle, json: &[u8]) -> bool {
    let max_frame = core.config.max_frame_bytes;
    let joins = link.batch.as_ref().is_some_and(|batch| batch.takes(link.out.len(), max_frame, from, to, json.len()));
    if !joins {
        close_batch(link);
        let chain = to.transport().shared_chain();
        let nonce = core.next_nonce(to);
        let Some(at) = wire::begin_batch(&mut link.out, from, to.id(), chain, nonce) else { return false };
        link.batch = Some(OpenBatch {
            from: from.clone(),
            to: to.id().clone(),
            chain: Arc::clone(chain),
            key: to.key().into_owned(),
            nonce,
            at,
            count: 0,
        });
        link.out_frames += 1;
    }
    if !wire::push_message(&mut link.out, json) {
        if !joins {
            // Undo the batch just opened (its nonce is simply never used).
            if let Some(batch) = link.batch.take() {
                link.out.truncate(batch.at.frame);
                link.out_frames -= 1;
            }
        }
        return false;
    }
    if let Some(batch) = &mut link.batch {
        batch.count += 1;
    }
    link.out_items += 1;
    true
}

/// Seals the batch being gathered at the end of the link's queue, if any.
fn close_batch(link: &mut Link) {
    if let Some(batch) = link.batch.take() {
        let OpenBatch { to, chain, key, nonce, at, count, .. } = batch;
        // Within BATCH_BYTES (or one message), far from the 4 GiB a frame cannot pass.
        let _ = wire::end_batch(&mut link.out, at, count, &key, nonce, &to, &chain);
    }
}

/// Closes the link's batch and writes what the socket takes of its queue now, from this thread;
/// leaves the rest to the writer (woken). The link must be up and its writer idle.
fn flush(core: &Core, link: &mut Link) {
    close_batch(link);
    match write_now(link, &link.out) {
        Ok(n) if n == link.out.len() => {
            add(&core.stats.frames_out, std::mem::take(&mut link.out_frames));
            link.out_items = 0;
            add(&core.stats.bytes_out, n as u64);
            bump(&core.stats.writes);
            link.out.clear();
            return;
        }
        Ok(n) => {
            add(&core.stats.bytes_out, n as u64);
            link.out.drain(..n);
        }
        Err(_) => {}
    }
    if let Some(kick) = &link.kick {
        let _ = kick.try_send(());
    }
}

thread_local! {
    /// On a worker running handlers: the peers it queued frames for, to flush when it is done.
    static CORK: RefCell<Option<Vec<Arc<Peer>>>> = const { RefCell::new(None) };
}

/// From now on this thread's frames to connected peers wait in their queues until [`uncork`].
pub(crate) fn cork() {
    CORK.with(|cork| *cork.borrow_mut() = Some(Vec::new()));
}

/// The peer at `address`, if this thread is corked and queued for it already: a burst of sends
/// to one peer looks it up in the map (a lock and a hash) only once.
fn corked_peer(address: &str) -> Option<Arc<Peer>> {
    CORK.with(|cork| cork.borrow().as_ref()?.iter().find(|peer| peer.address == address).map(Arc::clone))
}

/// Whether this thread is corked; if so, remembers `peer` to flush.
fn corked(peer: &Arc<Peer>) -> bool {
    CORK.with(|cork| match cork.borrow_mut().as_mut() {
        Some(peers) => {
            if !peers.iter().any(|p| Arc::ptr_eq(p, peer)) {
                peers.push(Arc::clone(peer));
            }
            true
        }
        None => false,
    })
}

/// Flushes what this thread queued while corked: one write per peer, from this thread if its
/// writer is idle (else the writer takes it with what it has).
pub(crate) fn uncork(core: &Core) {
    let peers = CORK.with(|cork| cork.borrow_mut().take()).unwrap_or_default();
    for peer in peers {
        let mut link = peer.lock();
        if link.out.is_empty() {
            continue;
        }
        if link.conn == Conn::Up && !link.writing {
            flush(core, &mut link);
        } else {
            close_batch(&mut link);
            if let Some(kick) = &link.kick {
                let _ = kick.try_send(());
            }
        }
    }
}

/// Writes what the socket takes now without waiting (it is non-blocking).
fn write_now(link: &Link, frame: &[u8]) -> io::Result<usize> {
    match &link.socket {
        Some(socket) => {
            let mut socket: &std::net::TcpStream = socket.get_ref();
            socket.write(frame)
        }
        None => Err(io::ErrorKind::NotConnected.into()),
    }
}

fn queue(link: &mut Link, frame: Vec<u8>) {
    if link.out.is_empty() && link.out.capacity() < frame.capacity() {
        link.out = frame;
    } else {
        link.out.extend_from_slice(&frame);
    }
    link.out_frames += 1;
    link.out_items += 1;
}

/// Dials the machine at `address` in the background (a builder's `peer`), if not linked yet.
pub(crate) fn connect(core: &Arc<Core>, address: &str) {
    let peer = core.peers.get(address);
    let mut link = peer.lock();
    if link.conn != Conn::Down {
        return;
    }
    link.conn = Conn::Dialing;
    link.epoch += 1;
    let epoch = link.epoch;
    drop(link);
    core.spawn_io(dial(Arc::clone(core), peer, epoch));
}

async fn timeout<T>(limit: Duration, fut: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    futures_lite::future::or(fut, async {
        Timer::after(limit).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

async fn dial(core: Arc<Core>, peer: Arc<Peer>, epoch: u64) {
    let mut refusals = 0;
    loop {
        let error = match timeout(CONNECT_TIMEOUT, handshake(&core, &peer.address)).await {
            Ok((stream, machine)) => {
                bump(&core.stats.connections_dialed);
                install(&core, &peer, stream, machine, Some(epoch));
                return;
            }
            Err(error) => error,
        };
        bump(&core.stats.connect_failed);
        if error.kind() == io::ErrorKind::ConnectionAborted && refusals < MAX_REFUSALS {
            // The peer keeps a connection it dialed itself: it is about to reach this machine.
            // Keep the frames queued for it, and dial again only if it does not.
            refusals += 1;
            Timer::after(REFUSED_RETRY).await;
            let link = peer.lock();
            if link.epoch != epoch || link.conn != Conn::Dialing {
                return;
            }
            continue;
        }
        let mut link = peer.lock();
        if link.epoch != epoch || link.conn != Conn::Dialing {
            return;
        }
        tracing::warn!(peer = %peer.address, %error, backoff_ms = link.backoff.as_millis() as u64, "dz: cannot connect to a peer");
        link.conn = Conn::Down;
        link.retry_at = Some(Instant::now() + link.backoff);
        link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
        link.out_frames = 0;
        let lost = std::mem::take(&mut link.out_items);
        link.out = Vec::new();
        link.batch = None;
        add(&core.stats.send_failed, lost);
        return;
    }
}

/// Connects, says hello and waits for the peer's ack.
async fn handshake(core: &Core, address: &str) -> io::Result<(TcpStream, MachineId)> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    wire::hello(&mut buf, core.handle.id(), core.handle.address()).map_err(io::Error::other)?;
    stream.write_all(&buf).await?;
    let mut frame = Vec::new();
    match frame::read(&mut stream, GREETING_MAX, &mut frame).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the peer refused the connection"));
        }
        Err(FrameError::Io(e)) => return Err(e),
        Err(e) => return Err(invalid(&e.to_string())),
    }
    match wire::decode(&frame) {
        Ok(Wire::Ack { machine, address: theirs }) => {
            tracing::debug!(peer = address, %machine, listens_on = %theirs, "dz: connected to a peer");
            Ok((stream, machine))
        }
        _ => Err(invalid("the peer's answer is not an ack")),
    }
}

/// Accepts connections until the machine stops.
pub(crate) async fn accept_loop(core: Arc<Core>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                bump(&core.stats.connections_accepted);
                core.spawn_io(accepted(Arc::clone(&core), stream));
            }
            Err(error) => {
                tracing::warn!(%error, "dz: accept failed");
                Timer::after(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn accepted(core: Arc<Core>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut frame = Vec::new();
    let limit = GREETING_MAX.min(core.config.max_frame_bytes);
    let first = futures_lite::future::or(frame::read(&mut stream, limit, &mut frame), async {
        Timer::after(HELLO_TIMEOUT).await;
        Err(FrameError::Io(io::ErrorKind::TimedOut.into()))
    })
    .await;
    match first {
        Ok(true) => {}
        Ok(false) => return,
        Err(FrameError::TooLarge { len, max }) => {
            tracing::warn!(len, max, "dz: closing a new connection: its first frame is oversized");
            bump(&core.stats.oversized_frames);
            return;
        }
        Err(FrameError::Io(error)) => {
            tracing::debug!(%error, "dz: a new connection ended before its hello");
            return;
        }
    }
    bump(&core.stats.frames_in);
    let (machine, address) = match wire::decode(&frame) {
        Ok(Wire::Hello { machine, address }) if address != core.handle.address() => (machine, address),
        Ok(_) => {
            tracing::warn!("dz: closing a new connection: its first frame is not a hello");
            bump(&core.stats.bad_frames);
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "dz: closing a new connection: its first frame is not valid");
            bump(&core.stats.bad_frames);
            return;
        }
    };
    let peer = core.peers.get(&address);
    let keep_mine = {
        let link = peer.lock();
        let mine = link.conn == Conn::Dialing || (link.conn == Conn::Up && link.mine);
        mine && core.handle.address() < address.as_str()
    };
    if keep_mine {
        // Both dialed: the connection dialed by the smaller address serves the pair.
        tracing::debug!(peer = %address, "dz: both dialed at once; keeping the connection this machine dialed");
        return;
    }
    let mut buf = Vec::new();
    if wire::ack(&mut buf, core.handle.id(), core.handle.address()).is_err() || stream.write_all(&buf).await.is_err() {
        return;
    }
    install(&core, &peer, stream, machine, None);
}

/// Makes `stream` the peer's connection and starts its reader and writer. `dialed` is the epoch
/// of the dial that made it (it stands down if superseded); an accepted connection supersedes.
fn install(core: &Arc<Core>, peer: &Arc<Peer>, stream: TcpStream, machine: MachineId, dialed: Option<u64>) {
    let (kick, kicked) = async_channel::bounded(1);
    let epoch = {
        let mut link = peer.lock();
        match dialed {
            Some(epoch) if link.epoch != epoch || link.conn != Conn::Dialing => return,
            Some(_) => {}
            None => link.epoch += 1,
        }
        link.conn = Conn::Up;
        link.mine = dialed.is_some();
        if !link.out.is_empty() {
            let _ = kick.try_send(());
        }
        link.kick = Some(kick);
        link.socket = Some(stream.clone().into());
        link.machine = Some(machine);
        link.backoff = MIN_BACKOFF;
        link.retry_at = None;
        link.epoch
    };
    core.spawn_io(read_loop(Arc::clone(core), Arc::clone(peer), stream.clone(), epoch));
    core.spawn_io(write_loop(Arc::clone(core), Arc::clone(peer), stream, kicked, epoch));
}

/// The connection of `epoch` is gone: drop what was queued for it (counted) and let the next
/// send dial again.
fn link_down(core: &Core, peer: &Peer, epoch: u64, lost: u64, why: &str) {
    add(&core.stats.send_failed, lost);
    let mut link = peer.lock();
    if link.epoch != epoch || link.conn != Conn::Up {
        return;
    }
    tracing::info!(peer = %peer.address, why, "dz: connection to a peer closed");
    bump(&core.stats.connections_closed);
    link.conn = Conn::Down;
    link.kick = None;
    link.socket = None;
    link.retry_at = None;
    link.out_frames = 0;
    let queued = std::mem::take(&mut link.out_items);
    link.out = Vec::new();
    link.batch = None;
    add(&core.stats.send_failed, queued);
}

async fn write_loop(
    core: Arc<Core>,
    peer: Arc<Peer>,
    mut stream: TcpStream,
    kicked: async_channel::Receiver<()>,
    epoch: u64,
) {
    let mut batch = Vec::new();
    loop {
        let (frames, items) = {
            let mut link = peer.lock();
            if link.epoch != epoch {
                return;
            }
            close_batch(&mut link);
            std::mem::swap(&mut link.out, &mut batch);
            link.writing = !batch.is_empty();
            (std::mem::take(&mut link.out_frames), std::mem::take(&mut link.out_items))
        };
        if batch.is_empty() {
            if kicked.recv().await.is_err() {
                return;
            }
            continue;
        }
        if let Err(error) = stream.write_all(&batch).await {
            tracing::debug!(peer = %peer.address, %error, "dz: write to a peer failed");
            link_down(&core, &peer, epoch, items, "write failed");
            return;
        }
        add(&core.stats.frames_out, frames);
        add(&core.stats.bytes_out, batch.len() as u64);
        bump(&core.stats.writes);
        batch.clear();
        if batch.capacity() > KEEP_BUFFER {
            batch = Vec::new();
        }
    }
}

async fn read_loop(core: Arc<Core>, peer: Arc<Peer>, stream: TcpStream, epoch: u64) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut frame = Vec::new();
    let why = loop {
        match frame::read(&mut reader, core.config.max_frame_bytes, &mut frame).await {
            Ok(true) => {
                bump(&core.stats.frames_in);
                add(&core.stats.bytes_in, (frame.len() + frame::HEADER) as u64);
                let result = match wire::read(&frame) {
                    Ok(wire::Frame::Json(wire)) => core.receive(wire),
                    Ok(wire::Frame::Batch(batch)) => {
                        core.receive_batch(batch);
                        Ok(())
                    }
                    Err(error) => {
                        tracing::warn!(peer = %peer.address, %error, "dz: closing a connection: a frame is not valid");
                        Err("a frame is not valid")
                    }
                };
                if let Err(why) = result {
                    bump(&core.stats.bad_frames);
                    break why;
                }
                if frame.capacity() > KEEP_BUFFER {
                    frame = Vec::new();
                }
            }
            Ok(false) => break "closed by the peer",
            Err(FrameError::TooLarge { len, max }) => {
                tracing::warn!(peer = %peer.address, len, max, "dz: closing a connection: a frame is oversized");
                bump(&core.stats.oversized_frames);
                break "oversized frame";
            }
            Err(FrameError::Io(error)) => {
                tracing::debug!(peer = %peer.address, %error, "dz: read from a peer failed");
                break "read failed";
            }
        }
    };
    link_down(&core, &peer, epoch, 0, why);
}
