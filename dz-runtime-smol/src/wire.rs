//! What a frame's payload says: JSON, one object per frame, named by its only key.
//!
//! ```json
//! {"hello":{"machine":"Machine_..","address":"127.0.0.1:4000"}}    first frame of a dialer
//! {"ack":{"machine":"Machine_..","address":"127.0.0.1:4001"}}      the listener's answer
//! {"sealed":{"from":"Pinger_..","to":"Ponger_..","chain":["Pinger_.."],"bytes":"<base64>"}}
//! {"msg":{"from":"Pinger_..","to":"Ponger_..","message":{"Ping":{"n":1}}}}     sealing off
//! {"spawn":{"from":"Root_..","id":"Leaf_..","node_type":"Leaf","state":{..},"secret":"<base64>"}}
//! {"terminate":{"from":"Root_..","target":"Leaf_..","chain":["Root_.."],"bytes":"<base64>"}}
//! ```
//!
//! A message goes `sealed` (the default) or, between machines built with `sealing(false)`, as
//! plain `msg`. A `sealed` frame names the receiver and the delegation chain of the handle it
//! was sent through, and carries in `bytes` (standard base64, padded) the nonce (12 bytes: the
//! sending instance, 4, and its counter, 8, little-endian), the message's JSON encrypted with
//! ChaCha20-Poly1305 under the chain's link key, and the 16-byte tag; the associated data is the
//! receiver and the chain ([`dz_core::security::seal`]). `from` is for the logs only: it is not
//! authenticated (the chain is). A machine with sealing on rejects a plain `msg` (counted as
//! malformed); one with sealing off drops a `sealed` one (counted as undecodable).
//!
//! A `terminate` is sealed the same way (its plaintext is a fixed marker) under the handle to
//! its target; with sealing off it has no `chain` or `bytes`.
//!
//! A `spawn` carries the new node's state and its secret (32 bytes, base64), drawn by the
//! spawner, who derived the first handle's key from it. Spawns and greetings are not sealed
//! (see the crate's threat model).
//!
//! Messages and node states are written into the frame as the JSON their types make, and read
//! back as raw JSON, decoded only by the node (or node type) they are for.

use std::borrow::Cow;

use dz_core::security::NodeSecret;
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
    Sealed {
        from: NodeId,
        to: NodeId,
        chain: Vec<NodeId>,
        #[serde(borrow)]
        bytes: Cow<'a, str>,
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

/// The bytes of a `sealed` frame, or `None` if they are not canonical base64.
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

/// Appends a `sealed` frame; `sealed` is what [`dz_core::security::SendLinks::seal`] made.
pub(crate) fn sealed(
    buf: &mut Vec<u8>,
    from: &NodeId,
    to: &NodeId,
    chain: &[NodeId],
    sealed: &[u8],
) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"sealed\":{\"from\":");
        string(buf, from.as_str())?;
        buf.extend_from_slice(b",\"to\":");
        string(buf, to.as_str())?;
        chain_and_bytes(buf, chain, sealed)?;
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

/// Reads `payload` as a machine reads a frame from a peer, short of acting on it: parses it and,
/// for a sealed message, decodes its bytes and tries to open them (with a throwaway secret, so
/// they never open). Whether the frame parsed.
pub(crate) fn check(payload: &[u8]) -> bool {
    match decode(payload) {
        Ok(Wire::Sealed { to, chain, bytes, .. }) => {
            let chain: std::sync::Arc<[NodeId]> = chain.into();
            if let Some(sealed) = sealed_bytes(&bytes) {
                let mut links = dz_core::security::RecvLinks::default();
                let secret = || Some(NodeSecret::from_bytes([0; 32]));
                let _ = links.open(&to, &chain, &sealed, secret);
            }
            true
        }
        Ok(_) => true,
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
        let mut buf = Vec::new();
        let chain = [a.clone(), NodeId::from("C_3")];
        sealed(&mut buf, &a, &b, &chain, &[0, 1, 2, 250, 251]).unwrap();
        match decode(payload(&buf)).unwrap() {
            Wire::Sealed { from, to, chain: read, bytes } => {
                assert_eq!((from, to, read), (a.clone(), b.clone(), chain.to_vec()));
                assert_eq!(sealed_bytes(&bytes), Some(vec![0, 1, 2, 250, 251]));
            }
            other => panic!("{other:?}"),
        }
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
