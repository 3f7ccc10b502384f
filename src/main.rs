fn main() {
    println!("catdog: under construction");
}
