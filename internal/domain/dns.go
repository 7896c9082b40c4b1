package domain

// DNS zones a record belongs to.
const (
	ZoneHost      = "host"      // names clients outside Docker resolve (Traefik's address)
	ZoneContainer = "container" // names containers resolve (each replica's address)
)

// DNSEntry is one DNS record moor keeps for a container.
type DNSEntry struct {
	Zone    string `json:"zone"` // ZoneHost or ZoneContainer
	Name    string `json:"name"` // fully qualified, no trailing dot
	Type    string `json:"type"`
	Value   string `json:"value"`
	Replica *int   `json:"replica,omitempty"`
	TTL     int    `json:"ttl"`
}

// DNSRecord is a DNSEntry with its container's id and name.
type DNSRecord struct {
	DNSEntry
	ContainerID string
	Container   string
}

// DNSPort is a named port of a container, for SRV records.
type DNSPort struct {
	ContainerID string
	Container   string
	Name        string
	Port        int
	Protocol    string
}

// DNSAlias is an extra host name of a container (spec.routing.aliases).
type DNSAlias struct {
	ContainerID string
	Container   string
	Alias       string
}

// DNSState is everything the DNS server builds its zones from, read in one
// consistent snapshot, every list sorted.
type DNSState struct {
	Records []DNSRecord
	Ports   []DNSPort
	Aliases []DNSAlias
}
