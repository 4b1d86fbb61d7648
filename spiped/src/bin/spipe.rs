fn main() {
    todo!("spipe binary")
}
