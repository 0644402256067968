//! `boxoffice migrate`: the databases created and migrated without serving.

use crate::common::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_every_module_database_and_can_run_again() {
    let data = tempfile::tempdir().unwrap();
    let store = Store::new(data.path());
    for _ in 0..2 {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .arg("migrate")
            .args(store.serve_args())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        for module in ["catalog", "reservation", "order", "payment"] {
            assert!(stdout.lines().any(|l| l.starts_with("migrated ") && l.contains(module)), "{stdout}");
        }
    }
    // The migrated schema is there: the outbox of the order module, for one.
    let db = store.connect("order").await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&db).await.unwrap();
    assert_eq!(n, 0);
}
