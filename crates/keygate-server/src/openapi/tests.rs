use super::*;

#[test]
fn builds() {
    let doc = Document::build().expect("a document");
    let v: Value = serde_json::from_slice(doc.json()).expect("JSON");
    assert_eq!(v["openapi"], "3.1.0");
}

#[test]
#[ignore = "prints the document"]
fn print() {
    let doc = Document::build().expect("a document");
    println!("{}", String::from_utf8_lossy(doc.json()));
}
