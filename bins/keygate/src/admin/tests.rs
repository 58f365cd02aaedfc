//! Rendering: tables, strings from the server, times.

use super::*;

#[test]
fn tables_align() {
    let mut out = Vec::new();
    let rows = vec![vec!["abc".to_owned(), "x".to_owned()]];
    table(&mut out, &["ID", "NAME"], &rows).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "ID   NAME\nabc  x\n");
}

#[test]
fn server_strings_cannot_drive_the_terminal() {
    assert_eq!(printable("web"), "web");
    assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    assert_eq!(printable("café"), "café");
}

#[test]
fn times() {
    assert_eq!(when(None), "-");
    assert_eq!(
        when(Some(time::macros::datetime!(2024-05-06 07:08:09 +02:00))),
        "2024-05-06 05:08Z"
    );
}
