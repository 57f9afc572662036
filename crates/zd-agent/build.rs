//! Registers the chat GraphQL schema with cynic.
fn main() {
    let path = "schema/chat.graphql";
    println!("cargo::rerun-if-changed={path}");
    #[allow(clippy::expect_used)]
    cynic_codegen::register_schema("chat")
        .from_sdl_file(path)
        .expect("schema file readable")
        .as_default()
        .expect("schema registers");
}
