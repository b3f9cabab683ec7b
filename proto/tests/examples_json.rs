//! The example envelope of every category, in proto3's canonical JSON
//! mapping, checked against `proto/examples/<category>.json` (which
//! `proto/README.md` shows). Regenerate with `LHCIE_UPDATE_GOLDEN=1`.

use lhcie_model::examples;
use lhcie_proto::{FILE_DESCRIPTOR_SET, encode_envelope};
use prost_reflect::{DescriptorPool, DynamicMessage};

fn to_json(bytes: &[u8]) -> String {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let descriptor = pool
        .get_message_by_name("lhcie.canonical.v1.Envelope")
        .unwrap();
    let message = DynamicMessage::decode(descriptor, bytes).unwrap();
    let mut json = serde_json::to_string_pretty(&message).unwrap();
    json.push('\n');
    json
}

#[test]
fn every_category_has_a_current_json_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let update = std::env::var_os("LHCIE_UPDATE_GOLDEN").is_some();
    for envelope in examples::all() {
        let file = dir.join(format!("{}.json", envelope.category));
        let json = to_json(&encode_envelope(&envelope));
        if update {
            std::fs::write(&file, &json).unwrap();
        } else {
            let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (regenerate with LHCIE_UPDATE_GOLDEN=1)",
                    file.display()
                )
            });
            assert_eq!(
                json,
                expected,
                "{} is stale: regenerate with LHCIE_UPDATE_GOLDEN=1",
                file.display()
            );
        }
    }
}
