fn main() {
    todo!("dataplane binary")
}
