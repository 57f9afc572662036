//! Registers the project's chat schema (`schemas/chat/chat.graphql`) with cynic.
fn main() {
    let path = "../../schemas/chat/chat.graphql";
    println!("cargo::rerun-if-changed={path}");
    #[allow(clippy::expect_used)]
    cynic_codegen::register_schema("chat")
        .from_sdl_file(path)
        .expect("schemas/chat/chat.graphql is readable")
        .as_default()
        .expect("the chat schema registers");
}
