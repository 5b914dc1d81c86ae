fn double(x) {
    return x + x
}
fn double(x) {
    return 2 * x
}
