module fragmenty/fanout-client

go 1.22
