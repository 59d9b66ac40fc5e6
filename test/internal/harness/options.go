package harness

import (
	"net"
	"net/netip"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
)

// Loopback is the address published ports are bound to.
var Loopback = netip.MustParseAddr("127.0.0.1")

// WithLoopbackPorts exposes ports (for example "4222/tcp") and publishes
// each on 127.0.0.1 at a port the engine picks, so that nothing of the suite
// listens on other interfaces of the host. The engine picks a new host port
// whenever the container starts again: read mapped ports after a restart.
func WithLoopbackPorts(ports ...string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		req.ExposedPorts = append(req.ExposedPorts, ports...)
		prev := req.HostConfigModifier
		req.HostConfigModifier = func(hc *container.HostConfig) {
			if prev != nil {
				prev(hc)
			}
			if hc.NetworkMode.IsHost() {
				return
			}
			if hc.PortBindings == nil {
				hc.PortBindings = network.PortMap{}
			}
			for _, p := range ports {
				port, err := network.ParsePort(p)
				if err != nil {
					continue // parseExposedPorts reports it
				}
				hc.PortBindings[port] = []network.PortBinding{{HostIP: Loopback, HostPort: "0"}}
			}
		}
		return nil
	}
}

// WithLabels returns an option that puts Labels on a container.
func WithLabels() testcontainers.CustomizeRequestOption {
	return testcontainers.WithLabels(Labels())
}

// WithHostNetwork runs a container in the host's network namespace: it
// reaches services on the host's loopback (the PostgreSQL of .ci/postgres)
// and listens on the host's ports itself, so it must be told free ones.
func WithHostNetwork() testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		prev := req.HostConfigModifier
		req.HostConfigModifier = func(hc *container.HostConfig) {
			if prev != nil {
				prev(hc)
			}
			hc.NetworkMode = "host"
			hc.PortBindings = nil
		}
		req.ExposedPorts = nil
		return nil
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a
// container in the host's network to listen on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}
