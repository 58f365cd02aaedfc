//! `connect(url)`: schemes, paths and error messages.

use keygate_keys::{StoreError, connect};

/// The error `connect` refuses `url` with.
async fn refused(url: &str) -> StoreError {
    connect(url).await.err().expect("connect refuses the URL")
}

#[tokio::test]
async fn unsupported_schemes_are_named_without_secrets() {
    let err = refused("mysql://root:hunter2@db/keygate").await;
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Invalid(_)));
    assert_eq!(
        msg,
        "unsupported database URL scheme `mysql`: use sqlite://PATH or postgres://..."
    );
    assert!(!msg.contains("hunter2"));
    let err = refused("keygate.db").await;
    assert!(err.to_string().contains("no scheme"), "{err}");
    let err = refused("sqlite://").await;
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_urls_open_relative_absolute_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("abs.db");
    let store = connect(&format!("sqlite://{}", abs.display()))
        .await
        .unwrap();
    crate::conformance::setup(&*store, "acme").await;
    assert!(abs.exists());
    let mem = connect("sqlite::memory:").await.unwrap();
    let s = crate::conformance::setup(&*mem, "acme").await;
    mem.verify(&s.owner_token).await.unwrap();
}

#[cfg(not(feature = "postgres"))]
#[tokio::test]
async fn postgres_without_the_feature_says_so() {
    let err = refused("postgres://u:secret@localhost/db").await;
    assert!(err.to_string().contains("feature `postgres`"), "{err}");
    assert!(!err.to_string().contains("secret"));
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_url_with_a_bad_password_does_not_echo_it() {
    let Some(base) = crate::postgres::url() else {
        return;
    };
    // A schema of its own: the store migrates what it connects to, and the shared
    // database's `public` schema may hold another build's tables.
    let schema = keygate_test::PgSchema::create(&base, "kg_connect").await;
    let url = schema.url.clone();
    // Same server, a user that does not exist: the error must not repeat the URL.
    let bad = url.replacen("postgres://postgres@", "postgres://nobody:s3cr3t-pw@", 1);
    if let Err(err) = connect(&bad).await {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    }
    let store = connect(&url).await.unwrap();
    store.ping().await.unwrap();
}
