//! What a frame's payload says: JSON, one object per frame, named by its only key.
//!
//! ```json
//! {"hello":{"machine":"Machine_..","address":"127.0.0.1:4000"}}    first frame of a dialer
//! {"ack":{"machine":"Machine_..","address":"127.0.0.1:4001"}}      the listener's answer
//! {"msg":{"from":"Pinger_..","to":"Ponger_..","message":{"Ping":{"n":1}}}}
//! {"spawn":{"from":"Root_..","id":"Leaf_..","node_type":"Leaf","state":{..}}}
//! {"terminate":{"from":"Root_..","target":"Leaf_.."}}
//! ```
//!
//! Messages and node states are written into the frame as the JSON their types make, and read
//! back as raw JSON, decoded only by the node (or node type) they are for.

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
    },
    Terminate {
        from: NodeId,
        target: NodeId,
    },
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

/// Appends a `spawn` frame; `state` is the node's JSON.
pub(crate) fn spawn(
    buf: &mut Vec<u8>,
    from: &NodeId,
    id: &NodeId,
    node_type: &str,
    state: &[u8],
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
        buf.extend_from_slice(b"}}");
        Ok(())
    })
}

/// Appends a `terminate` frame.
pub(crate) fn terminate(buf: &mut Vec<u8>, from: &NodeId, target: &NodeId) -> Result<(), serde_json::Error> {
    framed(buf, |buf| {
        buf.extend_from_slice(b"{\"terminate\":{\"from\":");
        string(buf, from.as_str())?;
        buf.extend_from_slice(b",\"target\":");
        string(buf, target.as_str())?;
        buf.extend_from_slice(b"}}");
        Ok(())
    })
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
        spawn(&mut buf, &a, &b, "Leaf", br#"{"x":[1,2]}"#).unwrap();
        assert!(matches!(
            serde_json::from_slice::<Wire<'_>>(payload(&buf)).unwrap(),
            Wire::Spawn { node_type, state, .. } if node_type == "Leaf" && state.get() == r#"{"x":[1,2]}"#
        ));
        let mut buf = Vec::new();
        terminate(&mut buf, &a, &b).unwrap();
        assert!(
            matches!(serde_json::from_slice::<Wire<'_>>(payload(&buf)).unwrap(), Wire::Terminate { target, .. } if target == b)
        );
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
            assert!(serde_json::from_slice::<Wire<'_>>(bad).is_err());
        }
    }
}
