"""What an operator reads: the read models behind the dashboard's pages and their JSON twins
(Today's panels, a customer's timeline, playbook funnels, insights, locations), each scoped to
the locations its viewer may see. One module per page; nothing here writes."""
