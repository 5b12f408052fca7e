//! Bad input from a raw TCP client is dropped or closes its connection, logged and counted, and
//! the machine goes on serving a normal client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{connect, connect_as_peer, framed};
use dz_examples::ping_pong::Ponger;
use dz_runtime_smol::{Machine, MachineStats};

/// Whether the machine closed the connection (within the read timeout).
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Whether the connection is still open a short while later.
fn stays_open(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("a read timeout");
    !is_closed(stream)
}

/// The machine still serves a normal client: 100 round trips of ping-pong with a peer machine.
fn still_serves(server: &Machine) {
    let client = common::client();
    assert_eq!(common::ping_pong(&client, server, 100, Duration::from_secs(30)), (100, 100));
}

fn wait_for(server: &Machine, what: impl Fn(&MachineStats) -> bool) -> MachineStats {
    common::wait_until(Duration::from_secs(10), || what(&server.stats()));
    server.stats()
}

#[test]
fn garbage_closes_the_connection() {
    let server = common::server();
    let mut stream = connect(&server);
    stream.write_all(b"GET / HTTP/1.1\r\nHost: dz\r\n\r\n").expect("write");
    assert!(is_closed(&mut stream));
    let stats = wait_for(&server, |s| s.bad_frames + s.oversized_frames == 1);
    assert_eq!(stats.bad_frames + stats.oversized_frames, 1, "{stats:?}");

    let mut stream = connect(&server);
    stream.write_all(&framed(b"\x00\x01 not json {{")).expect("write");
    assert!(is_closed(&mut stream));
    let mut stream = connect_as_peer(&server, "raw:1");
    stream.write_all(&framed(b"[1, 2, 3]")).expect("write");
    assert!(is_closed(&mut stream));
    let stats = wait_for(&server, |s| s.bad_frames >= 2);
    assert_eq!(stats.bad_frames + stats.oversized_frames, 3, "{stats:?}");
    still_serves(&server);
}

#[test]
fn an_oversized_frame_closes_the_connection() {
    let server = Machine::builder().register::<Ponger>().max_frame_bytes(1024).build().expect("a machine");
    let mut stream = connect_as_peer(&server, "raw:2");
    // Announces 4 GiB less a little, sends a few bytes: refused on the header alone.
    stream.write_all(&0xffff_fff0u32.to_be_bytes()).expect("write");
    stream.write_all(b"{}").expect("write");
    assert!(is_closed(&mut stream));
    let mut stream = connect_as_peer(&server, "raw:3");
    stream.write_all(&framed(&vec![b' '; 2048])).expect("write");
    assert!(is_closed(&mut stream));
    let stats = wait_for(&server, |s| s.oversized_frames == 2);
    assert_eq!(stats.oversized_frames, 2, "{stats:?}");
    still_serves(&server);
}

/// A machine that can host pongers, with sealing off: it takes plain messages, so that a raw
/// client can write them (sealed messages are the subject of `security.rs`).
fn plain_server() -> Machine {
    Machine::builder().register::<Ponger>().sealing(false).build().expect("a machine on loopback")
}

/// The machine still serves a normal client with sealing off too.
fn still_serves_plain(server: &Machine) {
    let client = Machine::builder().sealing(false).build().expect("a machine on loopback");
    assert_eq!(common::ping_pong(&client, server, 100, Duration::from_secs(30)), (100, 100));
}

#[test]
fn a_message_for_an_unknown_node_is_dropped() {
    let server = plain_server();
    let mut stream = connect_as_peer(&server, "raw:4");
    let msg = r#"{"msg":{"from":"Raw_1","to":"Ponger_doesnotexist","message":{"Ping":{"n":1}}}}"#;
    stream.write_all(&framed(msg.as_bytes())).expect("write");
    let stats = wait_for(&server, |s| s.dropped_no_node == 1);
    assert_eq!(stats.dropped_no_node, 1, "{stats:?}");
    assert!(stays_open(&mut stream), "a message for an unknown node only drops that message");
    still_serves_plain(&server);
}

#[test]
fn a_spawn_of_an_unknown_node_type_is_dropped() {
    let server = common::server();
    let mut stream = connect_as_peer(&server, "raw:5");
    let spawn = r#"{"spawn":{"from":"Raw_1","id":"Nope_1","node_type":"Nope","state":{},"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#;
    stream.write_all(&framed(spawn.as_bytes())).expect("write");
    // A registered type whose state does not decode.
    let spawn = r#"{"spawn":{"from":"Raw_1","id":"Ponger_1","node_type":"Ponger","state":[1,2],"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#;
    stream.write_all(&framed(spawn.as_bytes())).expect("write");
    let stats = wait_for(&server, |s| s.spawn_failed == 2);
    assert_eq!((stats.spawn_unknown_type, stats.spawn_failed, stats.spawned), (1, 2, 0), "{stats:?}");
    assert!(stays_open(&mut stream));
    still_serves(&server);
}

#[test]
fn a_message_that_does_not_fit_its_node_is_dropped() {
    let server = plain_server();
    let ponger = server.spawn(Ponger::default());
    let mut stream = connect_as_peer(&server, "raw:6");
    for message in [r#"{"Bogus":{"n":1}}"#, r#"{"Ping":{"n":"seven"}}"#, r#"[]"#] {
        let msg = format!(r#"{{"msg":{{"from":"Raw_1","to":"{}","message":{message}}}}}"#, ponger.id());
        stream.write_all(&framed(msg.as_bytes())).expect("write");
    }
    let stats = wait_for(&server, |s| s.dropped_undecodable == 3);
    assert_eq!(stats.dropped_undecodable, 3, "{stats:?}");
    assert!(stays_open(&mut stream));
    assert_eq!(server.inspect(&ponger, |p| p.served), Some(0));
    still_serves_plain(&server);
}

#[test]
fn a_second_hello_closes_the_connection() {
    let server = common::server();
    let mut stream = connect_as_peer(&server, "raw:7");
    stream.write_all(&framed(br#"{"hello":{"machine":"Raw_x","address":"raw:7"}}"#)).expect("write");
    assert!(is_closed(&mut stream));
    assert_eq!(wait_for(&server, |s| s.bad_frames == 1).bad_frames, 1);
    still_serves(&server);
}
