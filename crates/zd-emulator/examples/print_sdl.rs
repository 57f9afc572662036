//! Prints the SDL the engine executes.
fn main() {
    println!("{}", zd_emulator::chat::engine_sdl());
}
