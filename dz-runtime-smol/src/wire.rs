//! What a frame's payload says: a binary `batch` of sealed messages, or JSON, one object per
//! frame, named by its only key.
//!
//! ```json
//! {"hello":{"machine":"Machine_..","address":"127.0.0.1:4000"}}    first frame of a dialer
//! {"ack":{"machine":"Machine_..","address":"127.0.0.1:4001"}}      the listener's answer
//! {"msg":{"from":"Pinger_..","to":"Ponger_..","message":{"Ping":{"n":1}}}}     sealing off
//! {"spawn":{"from":"Root_..","id":"Leaf_..","node_type":"Leaf","state":{..},"secret":"<base64>"}}
//! {"terminate":{"from":"Root_..","target":"Leaf_..","chain":["Root_.."],"bytes":"<base64>"}}
//! ```
//!
//! Messages travel in `batch` frames (the default) or, between machines built with
//! `sealing(false)`, one by one as plain `msg`. A batch holds one or more messages from one
//! sender to one receiver through one handle (one link), sealed together as one AEAD message
//! under the link's key, with one nonce. Integers are little-endian; an id is its length (2
//! bytes) and its UTF-8:
//!
//! ```text
//! 0x01                        a batch (a JSON frame begins with `{`)
//! from, to                    two ids: the sender (for the logs only: not authenticated,
//!                             the chain is) and the receiver
//! n (1 byte), n ids           the delegation chain of the handle the messages went through
//! nonce (12 bytes)            the sending instance (4) and its counter on the link (8)
//! ciphertext, tag (16 bytes)  ChaCha20-Poly1305 under the chain's link key; associated data:
//!                             the receiver and the chain (dz_core::security::seal)
//! ```
//!
//! The plaintext is `0xba`, a count of messages (4 bytes, 1 to [`MAX_BATCH_MESSAGES`]), then
//! each message as its length (4 bytes) and its JSON. The receiver checks the count against the
//! limit and the plaintext's size before allocating anything for the messages, and takes a
//! batch whole or not at all: a batch that does not open, is replayed, or whose plaintext is not
//! exactly that, delivers nothing. A batch is what [`dz_core::security::seal`] would make of its
//! plaintext, so a link's batches and its sealed terminations share one counter and one replay
//! window. A machine with sealing on rejects a plain `msg` (counted as malformed); one with
//! sealing off drops a batch (counted as undecodable).
//!
//! A `terminate` is sealed under the handle to its target like a batch, its plaintext a fixed
//! marker, its sealed bytes (nonce, ciphertext, tag) in standard base64, padded; with sealing
//! off it has no `chain` or `bytes`.
//!
//! A `spawn` carries the new node's state and its secret (32 bytes, base64), drawn by the
//! spawner, who derived the first handle's key from it. Spawns and greetings are not sealed
//! (see the crate's threat model).
//!
//! Messages and node states are written into the frame as the JSON their types make, and read
//! back as raw JSON, decoded only by the node (or node type) they are for.

use std::borrow::Cow;

use dz_core::security::{LinkKey, LinkNonce, NodeSecret, MAX_CHAIN};
use dz_core::{MachineId, NodeId};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::frame;

/// A frame's payload, as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Wire<'a> {
    Hello {
        machine: MachineId,
        address: String,
    },
    Ack {
        machine: MachineId,
        address: String,
    },
    Msg {
        from: NodeId,
        to: NodeId,
        #[serde(borrow)]
        message: &'a RawValue,
    },
    Spawn {
        from: NodeId,
        id: NodeId,
        node_type: String,
        #[serde(borrow)]
        state: &'a RawValue,
        secret: NodeSecret,
    },
    Terminate {
        from: NodeId,
        target: NodeId,
        #[serde(default)]
        chain: Option<Vec<NodeId>>,
        #[serde(default, borrow)]
        bytes: Option<Cow<'a, str>>,
    },
}

/// Reads a frame's payload.
///
/// # Errors
///
/// When it is not one of the frames above.
pub(crate) fn decode(payload: &[u8]) -> Result<Wire<'_>, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// The sealed bytes of a `terminate` frame, or `None` if they are not canonical base64.
pub(crate) fn sealed_bytes(text: &str) -> Option<Vec<u8>> {
    dz_core::base64::decode_vec(text.as_bytes())
}

/// Writes a JSON string.
fn string(buf: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *buf, s)
}

fn framed(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<(), serde_json::Error> {
    let at = frame::begin(buf);
    if let Err(e) = write(buf) {
        buf.truncate(at);
        return Err(e);
    }
    if !frame::end(buf, at) {
        return Err(serde::ser::Error::custom("a frame over 4 GiB"));
    }
    Ok(())
}

fn greeting(buf: &mut Vec<u8>, kind: &str, machine: &MachineId, address: &str) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\":{\"machine\":");
        string(buf, machine.as_str())?;
        buf.extend_from_slice(b",\"address\":");
        string(buf, address)?;
        buf.extend_from_slice(b"}}");
        Ok(())
    })
}

/// Appends a `hello` frame.
pub(crate) fn hello(buf: &mut Vec<u8>, machine: &MachineId, address: &str) -> Result<(), serde_json::Error> {
    greeting(buf, "hello", machine, address)
}

/// Appends an `ack` frame.
pub(crate) fn ack(buf: &mut Vec<u8>, machine: &MachineId, address: &str) -> Result<(), serde_json::Error> {
    greeting(buf, "ack", machine, address)
}

/// Appends a `msg` frame; `message` is the message's JSON.
pub(crate) fn msg(buf: &mut Vec<u8>, from: &NodeId, to: &NodeId, message: &[u8]) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"msg\":{\"from\":");
        string(buf, from.as_str())?;
        buf.extend_from_slice(b",\"to\":");
        string(buf, to.as_str())?;
        buf.extend_from_slice(b",\"message\":");
        buf.extend_from_slice(message);
        buf.extend_from_slice(b"}}");
        Ok(())
    })
}

/// Appends a `spawn` frame; `state` is the node's JSON, `secret` the one drawn for it.
pub(crate) fn spawn(
    buf: &mut Vec<u8>,
    from: &NodeId,
    id: &NodeId,
    node_type: &str,
    state: &[u8],
    secret: &[u8; 32],
) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"spawn\":{\"from\":");
        string(buf, from.as_str())?;
        buf.extend_from_slice(b",\"id\":");
        string(buf, id.as_str())?;
        buf.extend_from_slice(b",\"node_type\":");
        string(buf, node_type)?;
        buf.extend_from_slice(b",\"state\":");
        buf.extend_from_slice(state);
        buf.extend_from_slice(b",\"secret\":\"");
        dz_core::base64::encode_into(secret, buf);
        buf.extend_from_slice(b"\"}}");
        Ok(())
    })
}

/// What a sealed `terminate` frame seals: a termination can be neither made from a sealed
/// message nor made into one (either would be a replay on its link).
pub(crate) const TERMINATE: &[u8] = b"dz terminate";

/// Appends a `terminate` frame; `sealed` is the chain of the handle to the target and
/// [`TERMINATE`] sealed under its key (none with sealing off).
pub(crate) fn terminate(
    buf: &mut Vec<u8>,
    from: &NodeId,
    target: &NodeId,
    sealed: Option<(&[NodeId], &[u8])>,
) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"terminate\":{\"from\":");
        string(buf, from.as_str())?;
        buf.extend_from_slice(b",\"target\":");
        string(buf, target.as_str())?;
        if let Some((chain, sealed)) = sealed {
            chain_and_bytes(buf, chain, sealed)?;
        }
        buf.extend_from_slice(b"}}");
        Ok(())
    })
}

/// Writes `,"chain":[..],"bytes":"<base64>"`.
fn chain_and_bytes(buf: &mut Vec<u8>, chain: &[NodeId], sealed: &[u8]) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(b",\"chain\":[");
    for (i, link) in chain.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        string(buf, link.as_str())?;
    }
    buf.extend_from_slice(b"],\"bytes\":\"");
    dz_core::base64::encode_into(sealed, buf);
    buf.push(b'"');
    Ok(())
}

// ---- sealed batches ----------------------------------------------------------------------------

/// The first byte of a `batch` frame's payload (a JSON frame's is `{`).
pub(crate) const BATCH: u8 = 0x01;

/// The first byte of a batch's plaintext. A sealed termination's plaintext ([`TERMINATE`]) and
/// a batch's cannot pass for each other.
const BATCH_MAGIC: u8 = 0xba;

/// The most messages a batch may hold: a receiver rejects a batch that says it holds more,
/// before allocating anything for them.
pub(crate) const MAX_BATCH_MESSAGES: usize = 65_536;

/// A sender closes a batch when its plaintext reaches this many bytes (a longer message travels
/// alone in its batch)...
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// ...or when it holds this many messages.
pub(crate) const BATCH_MESSAGES: u32 = 4_096;

/// Bytes a message adds to a batch besides its JSON (its length).
pub(crate) const BATCH_ENTRY: usize = 4;

/// A `batch` frame, as read: its sealed bytes are not opened yet.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    /// The sender of the batch's messages (for logs only: not authenticated, the chain is).
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    /// The chain; empty if the frame's is longer than [`MAX_CHAIN`] (not read: it is rejected
    /// as a bad chain like an empty one).
    pub(crate) chain: Vec<NodeId>,
    /// The nonce, the ciphertext and the tag, as [`dz_core::security::open`] takes them.
    pub(crate) sealed: &'a [u8],
}

/// What a frame's payload holds.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    Json(Wire<'a>),
    Batch(Batch<'a>),
}

/// Why a frame's payload is not a frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadFrame {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("a batch frame is cut short or names a node in bytes that are not UTF-8")]
    Batch,
}

/// Reads a frame's payload: a binary `batch`, or one of the JSON frames.
///
/// # Errors
///
/// When it is neither.
pub(crate) fn read(payload: &[u8]) -> Result<Frame<'_>, BadFrame> {
    match payload.split_first() {
        Some((&BATCH, rest)) => read_batch(rest).map(Frame::Batch).ok_or(BadFrame::Batch),
        _ => Ok(Frame::Json(decode(payload)?)),
    }
}

/// Takes `n` bytes off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

fn take_u16(bytes: &mut &[u8]) -> Option<u16> {
    take(bytes, 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn take_u32(bytes: &mut &[u8]) -> Option<u32> {
    take(bytes, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// An id: its length (2 bytes) and its UTF-8.
fn take_id<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let len = take_u16(bytes)?;
    std::str::from_utf8(take(bytes, len.into())?).ok()
}

fn read_batch(mut rest: &[u8]) -> Option<Batch<'_>> {
    let bytes = &mut rest;
    let from = NodeId::from(take_id(bytes)?);
    let to = NodeId::from(take_id(bytes)?);
    let links = usize::from(*take(bytes, 1)?.first()?);
    let mut chain = Vec::new();
    if links <= MAX_CHAIN {
        chain.reserve_exact(links);
        for _ in 0..links {
            chain.push(NodeId::from(take_id(bytes)?));
        }
    } else {
        for _ in 0..links {
            take_id(bytes)?;
        }
    }
    Some(Batch { from, to, chain, sealed: rest })
}

/// Writes an id as [`take_id`] reads it.
fn put_id(buf: &mut Vec<u8>, id: &NodeId) -> Option<()> {
    let bytes = id.as_str().as_bytes();
    buf.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_le_bytes());
    buf.extend_from_slice(bytes);
    Some(())
}

/// Where a batch begun with [`begin_batch`] lies in its buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAt {
    /// Where its frame begins.
    pub(crate) frame: usize,
    /// Where its plaintext begins (right after the nonce).
    pub(crate) plain: usize,
}

/// Begins a `batch` frame at the end of `buf`, up to its plaintext's first message; messages
/// follow with [`push_message`], and [`end_batch`] seals and ends it. `None` (and `buf` as it
/// was) if an id is longer than 65,535 bytes or the chain has more than 255 links.
pub(crate) fn begin_batch(
    buf: &mut Vec<u8>,
    from: &NodeId,
    to: &NodeId,
    chain: &[NodeId],
    nonce: LinkNonce,
) -> Option<BatchAt> {
    let frame = frame::begin(buf);
    let written = (|| {
        buf.push(BATCH);
        put_id(buf, from)?;
        put_id(buf, to)?;
        buf.push(u8::try_from(chain.len()).ok()?);
        for link in chain {
            put_id(buf, link)?;
        }
        Some(())
    })();
    if written.is_none() {
        buf.truncate(frame);
        return None;
    }
    buf.extend_from_slice(&nonce.to_bytes());
    let plain = buf.len();
    buf.push(BATCH_MAGIC);
    buf.extend_from_slice(&0u32.to_le_bytes());
    Some(BatchAt { frame, plain })
}

/// Adds a message (its JSON) to the batch at the end of `buf`; `false` (and nothing added) for
/// a message over 4 GiB.
pub(crate) fn push_message(buf: &mut Vec<u8>, json: &[u8]) -> bool {
    let Ok(len) = u32::try_from(json.len()) else { return false };
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(json);
    true
}

/// Ends the batch at `at`, the last thing in `buf`, holding `count` messages: seals its
/// plaintext under `key` with `nonce` (written by [`begin_batch`]), the receiver `to` and
/// `chain` as associated data, and writes the frame's length. `false` (and the batch removed)
/// if the frame is over 4 GiB.
pub(crate) fn end_batch(
    buf: &mut Vec<u8>,
    at: BatchAt,
    count: u32,
    key: &LinkKey,
    nonce: LinkNonce,
    to: &NodeId,
    chain: &[NodeId],
) -> bool {
    buf[at.plain + 1..at.plain + 1 + 4].copy_from_slice(&count.to_le_bytes());
    dz_core::security::seal_in_place(key, nonce, to, chain, buf, at.plain);
    frame::end(buf, at.frame)
}

/// The messages of an opened batch, in order, if its plaintext is well formed: the marker, a
/// count of 1 to [`MAX_BATCH_MESSAGES`] (checked before anything is allocated for them), and
/// that many messages that fill it exactly. A batch is taken or refused whole.
pub(crate) fn batch_messages(plain: &[u8]) -> Option<Vec<&[u8]>> {
    let (&magic, mut rest) = plain.split_first()?;
    if magic != BATCH_MAGIC {
        return None;
    }
    let count = take_u32(&mut rest)? as usize;
    if count == 0 || count > MAX_BATCH_MESSAGES || count > rest.len() / BATCH_ENTRY {
        return None;
    }
    let mut messages = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take_u32(&mut rest)? as usize;
        messages.push(take(&mut rest, len)?);
    }
    rest.is_empty().then_some(messages)
}

/// Reads `payload` as a machine reads a frame from a peer, short of acting on it: parses it and,
/// for a batch, tries to open it (with a throwaway secret, so it never opens), and reads its
/// sealed bytes as if they were an opened batch's plaintext (so that a fuzzer reaches that
/// reader too). Whether the frame parsed.
pub(crate) fn check(payload: &[u8]) -> bool {
    match read(payload) {
        Ok(Frame::Batch(Batch { to, chain, sealed, .. })) => {
            let chain: std::sync::Arc<[NodeId]> = chain.into();
            let mut links = dz_core::security::RecvLinks::default();
            let secret = || Some(NodeSecret::from_bytes([0; 32]));
            let _ = links.open(&to, &chain, sealed, secret);
            let _ = batch_messages(sealed);
            true
        }
        Ok(Frame::Json(Wire::Terminate { bytes: Some(bytes), .. })) => {
            let _ = sealed_bytes(&bytes);
            true
        }
        Ok(Frame::Json(_)) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(buf: &[u8]) -> &[u8] {
        &buf[frame::HEADER..]
    }

    #[test]
    fn frames_read_back() {
        let (a, b) = (NodeId::from("A_1"), NodeId::from("B_\"2"));
        let mut buf = Vec::new();
        msg(&mut buf, &a, &b, br#"{"Ping":{"n":1}}"#).unwrap();
        match serde_json::from_slice::<Wire<'_>>(payload(&buf)).unwrap() {
            Wire::Msg { from, to, message } => {
                assert_eq!((from, to), (a.clone(), b.clone()));
                assert_eq!(message.get(), r#"{"Ping":{"n":1}}"#);
            }
            other => panic!("{other:?}"),
        }
        let mut buf = Vec::new();
        let secret = NodeSecret::from_bytes([9; 32]);
        spawn(&mut buf, &a, &b, "Leaf", br#"{"x":[1,2]}"#, &[9; 32]).unwrap();
        assert!(matches!(
            serde_json::from_slice::<Wire<'_>>(payload(&buf)).unwrap(),
            Wire::Spawn { node_type, state, secret: shipped, .. }
                if node_type == "Leaf" && state.get() == r#"{"x":[1,2]}"# && shipped == secret
        ));
        let chain = [a.clone(), NodeId::from("C_3")];
        let mut buf = Vec::new();
        terminate(&mut buf, &a, &b, None).unwrap();
        assert!(matches!(
            decode(payload(&buf)).unwrap(),
            Wire::Terminate { target, chain: None, bytes: None, .. } if target == b
        ));
        let mut buf = Vec::new();
        terminate(&mut buf, &a, &b, Some((&chain, &[7, 8]))).unwrap();
        match decode(payload(&buf)).unwrap() {
            Wire::Terminate { target, chain: Some(read), bytes: Some(bytes), .. } => {
                assert_eq!((target, read), (b.clone(), chain.to_vec()));
                assert_eq!(sealed_bytes(&bytes), Some(vec![7, 8]));
            }
            other => panic!("{other:?}"),
        }
        let mut buf = Vec::new();
        hello(&mut buf, &MachineId::from("M_1"), "127.0.0.1:1").unwrap();
        assert!(matches!(
            serde_json::from_slice::<Wire<'_>>(payload(&buf)).unwrap(),
            Wire::Hello { address, .. } if address == "127.0.0.1:1"
        ));
    }

    fn batch_of(messages: &[&[u8]], key: &LinkKey, nonce: LinkNonce, to: &NodeId, chain: &[NodeId]) -> Vec<u8> {
        let mut buf = b"ahead".to_vec();
        let at = begin_batch(&mut buf, &NodeId::from("A_1"), to, chain, nonce).unwrap();
        for message in messages {
            assert!(push_message(&mut buf, message));
        }
        assert!(end_batch(&mut buf, at, messages.len() as u32, key, nonce, to, chain));
        assert_eq!(&buf[..5], b"ahead");
        buf.split_off(5)
    }

    #[test]
    fn a_batch_reads_back_opens_and_holds_its_messages_in_order() {
        let to = NodeId::from("B_2");
        let chain = [NodeId::from("A_1"), NodeId::from("C_3")];
        let secret = NodeSecret::from_bytes([4; 32]);
        let key = secret.key_for_chain(&chain).unwrap();
        let nonce = LinkNonce { instance: 9, counter: 3 };
        let messages: [&[u8]; 3] = [b"{\"Put\":1}", b"", b"{\"Put\":3}"];
        let buf = batch_of(&messages, &key, nonce, &to, &chain);
        let len = u32::from_be_bytes(buf[..frame::HEADER].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - frame::HEADER);
        let Ok(Frame::Batch(batch)) = read(payload(&buf)) else { panic!("not a batch") };
        assert_eq!((batch.from.as_str(), &batch.to, &batch.chain[..]), ("A_1", &to, &chain[..]));
        let (opened_nonce, plain) = dz_core::security::open(&key, &to, &chain, batch.sealed).unwrap();
        assert_eq!(opened_nonce, nonce);
        assert_eq!(batch_messages(&plain), Some(messages.to_vec()));
        assert!(check(payload(&buf)));
    }

    #[test]
    fn a_malformed_batch_plaintext_is_refused_whole() {
        let plain = |count: u32, entries: &[&[u8]]| {
            let mut p = vec![BATCH_MAGIC];
            p.extend_from_slice(&count.to_le_bytes());
            for e in entries {
                p.extend_from_slice(&(e.len() as u32).to_le_bytes());
                p.extend_from_slice(e);
            }
            p
        };
        assert_eq!(batch_messages(&plain(2, &[b"a", b"bc"])), Some(vec![&b"a"[..], b"bc"]));
        assert_eq!(batch_messages(&plain(3, &[b"a", b"bc"])), None, "fewer than it says");
        assert_eq!(batch_messages(&plain(1, &[b"a", b"bc"])), None, "more than it says");
        assert_eq!(batch_messages(&plain(0, &[])), None, "empty");
        let mut cut = plain(2, &[b"a", b"bc"]);
        cut.pop();
        assert_eq!(batch_messages(&cut), None, "cut short");
        let mut wrong = plain(1, &[b"a"]);
        wrong[0] = b'{';
        assert_eq!(batch_messages(&wrong), None, "not a batch's plaintext");
        assert_eq!(batch_messages(TERMINATE), None);
        // A count over the limit is refused before anything is allocated for it, even if the
        // plaintext is long enough to hold that many empty messages.
        let many = (MAX_BATCH_MESSAGES + 1) as u32;
        assert_eq!(batch_messages(&plain(many, &vec![&b""[..]; MAX_BATCH_MESSAGES + 1])), None);
        let max = plain(MAX_BATCH_MESSAGES as u32, &vec![&b""[..]; MAX_BATCH_MESSAGES]);
        assert_eq!(batch_messages(&max).map(|m| m.len()), Some(MAX_BATCH_MESSAGES));
        assert_eq!(batch_messages(&plain(u32::MAX, &[b"a"])), None);
    }

    #[test]
    fn a_batch_cut_short_or_with_bad_ids_is_not_a_frame() {
        let to = NodeId::from("B_2");
        let chain = [NodeId::from("A_1")];
        let key = LinkKey::from_bytes([1; 32]);
        let buf = batch_of(&[b"x"], &key, LinkNonce { instance: 1, counter: 1 }, &to, &chain);
        let whole = payload(&buf);
        // Cut inside the ids: not a frame. Cut inside the sealed bytes: a frame that will not open.
        let head = 1 + 2 + 3 + 2 + 3 + 1 + 2 + 3;
        for cut in 1..head {
            assert!(matches!(read(&whole[..cut]), Err(BadFrame::Batch)), "{cut}");
        }
        assert!(matches!(read(&whole[..head]), Ok(Frame::Batch(b)) if b.sealed.is_empty()));
        let mut not_utf8 = whole.to_vec();
        not_utf8[3] = 0xff;
        assert!(matches!(read(&not_utf8), Err(BadFrame::Batch)));
        // A chain over the limit is read past, not kept: it comes out empty (a bad chain).
        let mut long = vec![BATCH];
        for id in ["A_1", "B_2"] {
            long.extend_from_slice(&3u16.to_le_bytes());
            long.extend_from_slice(id.as_bytes());
        }
        long.push((MAX_CHAIN + 1) as u8);
        for _ in 0..=MAX_CHAIN {
            long.extend_from_slice(&0u16.to_le_bytes());
        }
        long.extend_from_slice(b"sealed");
        assert!(matches!(read(&long), Ok(Frame::Batch(b)) if b.chain.is_empty() && b.sealed == b"sealed"));
        // Ids or chains that cannot be written: nothing is.
        let mut buf = b"x".to_vec();
        let nonce = LinkNonce { instance: 1, counter: 1 };
        let long_id = NodeId::from("y".repeat(70_000).as_str());
        assert!(begin_batch(&mut buf, &long_id, &to, &chain, nonce).is_none());
        let long_chain = vec![NodeId::from("A_1"); 256];
        assert!(begin_batch(&mut buf, &to, &to, &long_chain, nonce).is_none());
        assert_eq!(buf, b"x");
    }

    #[test]
    fn garbage_does_not_parse() {
        for bad in [&b"GET / HTTP/1.1"[..], b"{}", b"{\"msg\":{}}", b"{\"nope\":1}", b"\xff\xfe"] {
            assert!(decode(bad).is_err());
        }
        // A spawn without its secret, or with a secret that is not 32 bytes.
        assert!(decode(br#"{"spawn":{"from":"A_1","id":"B_1","node_type":"B","state":{}}}"#).is_err());
        assert!(decode(br#"{"spawn":{"from":"A_1","id":"B_1","node_type":"B","state":{},"secret":"AA=="}}"#).is_err());
        assert_eq!(sealed_bytes("not base64!"), None);
    }
}
