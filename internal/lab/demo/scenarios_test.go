package demo_test

// scenarios are the demo scenarios CI runs.
var scenarios = []string{"access", "trunk", "multihoming"}
