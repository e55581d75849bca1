module chalk.dev/tooling/cluster/pause

go 1.26.3
