package hub

// SetBcryptCost sets the cost of the passwords' hashes the store makes,
// for tests that log in under the race detector.
func SetBcryptCost(c int) { bcryptCost = c }
