fn main() {
    todo!("spiped binary")
}
