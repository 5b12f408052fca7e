//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dz_examples::ping_pong::{Pinger, Ponger};
use dz_runtime_smol::Machine;

/// Polls `check` every few milliseconds until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Plays `rounds` of ping-pong with a pinger on `client` and a ponger on `server` (spawned there
/// from `client`, over TCP); returns (round trips, pings served).
pub fn ping_pong(client: &Machine, server: &Machine, rounds: u64, limit: Duration) -> (u64, u64) {
    let ponger = client.spawn_on(Ponger::default(), &server.handle());
    let pinger = client.spawn(Pinger::default());
    let for_pinger = client.transfer_handle(&ponger, pinger.id());
    pinger.start(&mut client.client(), for_pinger, rounds);
    wait_until(limit, || client.inspect(&pinger, |p| p.completed == rounds).unwrap_or(false));
    let completed = client.inspect(&pinger, |p| p.completed).unwrap_or(0);
    let served = server.inspect(&ponger, |p| p.served).unwrap_or(0);
    (completed, served)
}

/// A machine that can host pongers.
pub fn server() -> Machine {
    Machine::builder().listen("127.0.0.1:0").register::<Ponger>().build().expect("a machine on loopback")
}

/// A machine with no registered node types.
pub fn client() -> Machine {
    Machine::builder().listen("127.0.0.1:0").build().expect("a machine on loopback")
}

/// `payload` as one frame on the wire: a 4-byte big-endian length, then the bytes.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// A raw connection to `machine` (reads time out after 5 s).
pub fn connect(machine: &Machine) -> TcpStream {
    let stream = TcpStream::connect(machine.handle().address()).expect("the machine listens");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
    stream
}

/// Connects and says hello as the machine at `address`; reads the machine's ack.
pub fn connect_as_peer(machine: &Machine, address: &str) -> TcpStream {
    let mut stream = connect(machine);
    let hello = format!(r#"{{"hello":{{"machine":"Raw_{address}","address":"{address}"}}}}"#);
    stream.write_all(&framed(hello.as_bytes())).expect("write hello");
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("an ack's header");
    let mut ack = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut ack).expect("an ack");
    assert!(String::from_utf8_lossy(&ack).starts_with(r#"{"ack":"#));
    stream
}

/// The plaintext of a batch of messages, as `dz-runtime-smol`'s `wire` module documents it:
/// `0xba`, the count (4 bytes, little-endian), then each message's length (4 bytes) and bytes.
/// `count` is written as given, so that a test can make it lie.
pub fn batch_plaintext(count: u32, messages: &[&[u8]]) -> Vec<u8> {
    let mut plain = vec![0xba];
    plain.extend_from_slice(&count.to_le_bytes());
    for message in messages {
        plain.extend_from_slice(&(message.len() as u32).to_le_bytes());
        plain.extend_from_slice(message);
    }
    plain
}

/// A `batch` frame (length prefix included) from `from` to `to` with `chain`, whose sealed
/// bytes (nonce, ciphertext, tag) are `sealed`: `0x01`, then the ids (each a 2-byte
/// little-endian length and UTF-8; the chain after its 1-byte count), then `sealed`.
pub fn batch_frame(from: &str, to: &str, chain: &[&str], sealed: &[u8]) -> Vec<u8> {
    fn id(payload: &mut Vec<u8>, id: &str) {
        payload.extend_from_slice(&(id.len() as u16).to_le_bytes());
        payload.extend_from_slice(id.as_bytes());
    }
    let mut payload = vec![0x01];
    id(&mut payload, from);
    id(&mut payload, to);
    payload.push(chain.len() as u8);
    for link in chain {
        id(&mut payload, link);
    }
    payload.extend_from_slice(sealed);
    framed(&payload)
}
