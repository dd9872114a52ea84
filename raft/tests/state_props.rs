//! Property tests: applying commands is deterministic, and a snapshot (in memory, sent
//! to another node, or reloaded from disk) restores exactly the state it was taken from,
//! at every feature level (the commands raise it at random, and the security commands
//! are refused until it reaches 2).

mod strategies;

use std::collections::BTreeSet;
use std::sync::Arc;

use flotilla_raft::codec;
use flotilla_raft::state_machine::StateMachine;
use flotilla_raft::types::{Entry, LogId};
use flotilla_raft::{BrokerAddr, Command, CommandResult, ControlState};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};
use proptest::prelude::*;

fn broker_addr() -> impl Strategy<Value = BrokerAddr> {
    (
        prop::sample::select(vec!["a", "b", "kafka-3.internal"]),
        any::<u16>(),
        prop::option::of(prop::sample::select(vec!["z1", "z2"])),
    )
        .prop_map(|(host, port, rack)| BrokerAddr {
            host: host.to_string(),
            port,
            rack: rack.map(str::to_string),
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        prop::collection::vec((0i32..12, broker_addr()), 0..8)
            .prop_map(|brokers| Command::SyncBrokers { brokers }),
        (0u64..6, prop::collection::vec((0i32..12, 0u64..5), 0..6)).prop_map(
            |(expected_epoch, owners)| Command::Assign {
                expected_epoch,
                owners
            }
        ),
        (0u64..5, any::<bool>()).prop_map(|(node, drained)| Command::SetDrained { node, drained }),
        (0u16..=2).prop_map(|level| Command::SetFeatureLevel { level }),
        strategies::security_command(),
    ]
}

fn run(commands: &[Command]) -> (ControlState, Vec<CommandResult>) {
    let mut state = ControlState::default();
    let results = commands.iter().map(|c| state.apply(c)).collect();
    (state, results)
}

fn entries(commands: &[Command]) -> Vec<Entry> {
    commands
        .iter()
        .enumerate()
        .map(|(i, c)| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), i as u64 + 1),
            payload: EntryPayload::Normal(c.clone()),
        })
        .collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Applies `commands` to a fresh state machine, snapshots it, installs the snapshot into
/// another one and reopens the first from disk; returns the three resulting states.
async fn snapshot_round_trip(commands: &[Command]) -> [Arc<ControlState>; 3] {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = StateMachine::open(dir_a.path()).unwrap();
    a.apply(entries(commands)).await.unwrap();
    let applied = a.subscribe().borrow().clone();
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let mut b = StateMachine::open(dir_b.path()).unwrap();
    b.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    let installed = b.subscribe().borrow().clone();

    drop(a);
    let mut reopened = StateMachine::open(dir_a.path()).unwrap();
    let (last, _) = reopened.applied_state().await.unwrap();
    let expected_last = (!commands.is_empty()).then_some(commands.len() as u64);
    assert_eq!(last.map(|l| l.index), expected_last);
    let loaded = reopened.subscribe().borrow().clone();
    [applied, installed, loaded]
}

proptest! {
    #[test]
    fn apply_is_deterministic(commands in prop::collection::vec(command(), 0..40)) {
        prop_assert_eq!(run(&commands), run(&commands));
    }

    #[test]
    fn broker_order_does_not_matter(brokers in prop::collection::btree_map(0i32..50, broker_addr(), 0..10)) {
        let forward: Vec<_> = brokers.clone().into_iter().collect();
        let backward: Vec<_> = brokers.into_iter().rev().collect();
        let (a, _) = run(&[Command::SyncBrokers { brokers: forward }]);
        let (b, _) = run(&[Command::SyncBrokers { brokers: backward }]);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn slots_stay_dense_and_epoch_counts_accepted_assigns(commands in prop::collection::vec(command(), 0..40)) {
        let (state, results) = run(&commands);
        let slots: BTreeSet<u16> = state.identities.values().map(|i| i.slot).collect();
        prop_assert_eq!(slots, (0..state.identities.len() as u16).collect::<BTreeSet<_>>());
        let accepted = commands.iter().zip(&results)
            .filter(|(c, r)| matches!(c, Command::Assign { .. }) && **r == CommandResult::Ok)
            .count();
        prop_assert_eq!(state.assignment_epoch, accepted as u64);
    }

    #[test]
    fn security_data_exists_only_from_level_2(commands in prop::collection::vec(command(), 0..40)) {
        let (state, _) = run(&commands);
        prop_assert!(state.feature_level >= 2 || !state.has_security_data());
    }

    #[test]
    fn state_survives_encoding(commands in prop::collection::vec(command(), 0..40)) {
        let (state, _) = run(&commands);
        let decoded: ControlState = codec::decode(&codec::encode(&state).unwrap()).unwrap();
        prop_assert_eq!(decoded, state);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn snapshot_restores_the_same_state(commands in prop::collection::vec(command(), 0..30)) {
        let (expected, _) = run(&commands);
        let [applied, installed, loaded] = block_on(snapshot_round_trip(&commands));
        prop_assert_eq!(&*applied, &expected);
        prop_assert_eq!(&*installed, &expected);
        prop_assert_eq!(&*loaded, &expected);
    }
}
