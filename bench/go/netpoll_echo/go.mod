// netpoll_echo is built in GOPATH mode (GO111MODULE=off) by bench/netpoll/setup.sh, from
// sources at the versions below; this file keeps it out of the gonetbench module
// (bench/go/go.mod), whose peers build without netpoll, and records the pinned versions.
module netpollecho

go 1.19

require (
	github.com/bytedance/gopkg v0.1.1
	github.com/cloudwego/gopkg v0.1.4
	github.com/cloudwego/netpoll v0.7.2
	golang.org/x/sys v0.19.0
)
