import "../secrets"
