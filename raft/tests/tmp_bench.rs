use std::time::Instant;
use flotilla_raft::log_store::LogStore;
#[test]
fn bench_open() {
    let t = Instant::now();
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let _l = LogStore::open(dir.path(), 0).unwrap();
    }
    println!("20 opens: {:?}", t.elapsed());
}
