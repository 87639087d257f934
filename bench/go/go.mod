// Go module of the Go peers of gonet-bench: bench/go/rt (runtime micro-benchmarks) and bench/go/echo (echo server).
module gonetbench

go 1.19
