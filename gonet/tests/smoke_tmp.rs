use std::time::{Duration, Instant};
#[test]
fn smoke() {
    let v = gonet::Builder::new().procs(2).build().unwrap().run(|| {
        let hs: Vec<_> = (0..1000).map(|i| gonet::go(move || { gonet::yield_now(); i * 2 })).collect();
        let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        let t = Instant::now();
        gonet::time::sleep(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let p = gonet::go(|| panic!("boom")).join();
        assert!(p.is_err());
        s
    });
    assert_eq!(v, 999 * 1000);
}
