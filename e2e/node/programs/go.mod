// The node's own tiny programs (static, standard library only): the pause
// image's process and the HTTP check server of the node e2e tests.
module kube-harden/e2e/node/programs

go 1.24.0
