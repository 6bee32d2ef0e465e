"""ServiceCategory from a provider's service code: the facts of focus_converters' service-category mapping
tables (reference/mappings/focus_converters_{aws,azure,gcp}_service_category_mapping.csv, MIT), grouped by
category; OCI's service names are mapped here by hand. Unknown services are `Other`."""

from __future__ import annotations

_AWS = {
    "AI and Machine Learning": (
        "AWSDeepRacer|AmazonA2I|AmazonBedrock|AmazonCodeWhisperer|AmazonDevOpsGuru|AmazonEI|AmazonForecast|"
        "AmazonFraudDetector|AmazonHealthLake|AmazonKendra|AmazonLex|AmazonLookoutEquipment|"
        "AmazonLookoutMetrics|AmazonLookoutVision|AmazonMonitron|AmazonOmics|AmazonPersonalize|AmazonPolly|"
        "AmazonRekognition|AmazonSageMaker|AmazonTextract|comprehend|transcribe|translate"
    ),
    "Analytics": (
        "AWSCleanRooms|AWSDataExchange|AWSGlue|AWSGlueElasticViews|AWSLakeFormation|AmazonAthena|"
        "AmazonCloudSearch|AmazonES|AmazonFinSpace|AmazonKinesis|AmazonKinesisAnalytics|"
        "AmazonKinesisFirehose|AmazonMSK|AmazonQuickSight|ElasticMapReduce|datapipeline"
    ),
    "Business Applications": (
        "A4B|AWSSupplyChain|AWSWickr|AWSWisdom|AmazonChime|AmazonChimeBusinessCalling|AmazonChimeCallMe|"
        "AmazonChimeCallMeAMCS|AmazonChimeDialInAMCS|AmazonChimeDialin|AmazonChimeFeatures|"
        "AmazonChimeServices|AmazonChimeVoiceConnector|AmazonHoneycode|AmazonPinpoint|AmazonSES|AmazonSWF|"
        "AmazonWAM|AmazonWorkDocs|AmazonWorkLink|AmazonWorkMail|AmazonWorkSpacesWeb|Compute|"
        "ContactLensAmazonConnect|CustomerProfiles"
    ),
    "Compute": (
        "AWS App2Container*|AWS Auto Scaling*|AWS Batch*|AWS Compute Optimizer*|AWS Copilot*|"
        "AWS EC2 Auto Scaling*|AWS Elastic Beanstalk*|AWS Fargate*|AWS Local Zones*|"
        "AWS Serverless Application Repository*|AWS Wavelength*|AWSAppRunner|AWSLambda|AWSOutposts|"
        "Amazon EC2 Spot Instances*|AmazonAppStream|AmazonEC2|AmazonECR|AmazonECRPublic|AmazonECS|AmazonEKS|"
        "AmazonLightsail|ComputeSavingsPlans|Red Hat OpenShift Service on AWS*|SimSpaceWeaver|"
        "VMwareCloudOnAWS"
    ),
    "Databases": (
        "AmazonDocDB|AmazonDynamoDB|AmazonElastiCache|AmazonMCS|AmazonMemoryDB|AmazonNeptune|AmazonRDS|"
        "AmazonRedshift|AmazonTimestream"
    ),
    "Developer Tools": (
        "AWSAmplify|AWSAppSync|AWSCodeArtifact|AWSCodeCommit|AWSCodeDeploy|AWSCodePipeline|AWSDeviceFarm|"
        "CodeBuild|CodeCatalyst|CodeGuru"
    ),
    "Integration": (
        "AWSAppFabric|AWSQueueService|Amazon EventBridge|AmazonMQ|AmazonMWAA|AmazonSNS|AmazonStates|AppFlow"
    ),
    "Internet of Things": (
        "AWSGreengrass|AWSIoT|AWSIoT1Click|AWSIoTAnalytics|AWSIoTEvents|AWSIoTFleetWise|AWSIoTSiteWise|"
        "AWSIoTThingsGraph|IoTDeviceDefender|IoTDeviceManagement|IoTTwinMaker"
    ),
    "Management and Governance": (
        "AWS Cost and Usage Report*|AWSBillingConductor|AWSBudgets|AWSCloudFormation|AWSCloudTrail|AWSConfig|"
        "AWSCostExplorer|AWSResilienceHub|AWSServiceCatalog|AWSSystemsManager|AmazonCloudWatch|AmazonGrafana|"
        "AmazonPrometheus|OpsWorks|Reserved Instance (RI) Reporting*|Savings Plans*"
    ),
    "Media": (
        "AWSElementalMediaConvert|AWSElementalMediaLive|AWSElementalMediaPackage|AWSElementalMediaStore|"
        "AWSElementalMediaTailor|AWSMediaConnect|AmazonETS|AmazonIVS|AmazonKinesisVideo|nimble"
    ),
    "Migration": ("AWSApplicationMigrationSvc|AWSDataSync|AWSDatabaseMigrationSvc|AWSM2|AWSTransfer"),
    "Networking": (
        "AWS App Mesh*|AWS PrivateLink*|AWS Transit Gateway*|AWS VPN*|AWS Verified Access*|AWSCloudMap|"
        "AWSCloudWAN|AWSDataTransfer|AWSDirectConnect|AWSELB|AWSGlobalAccelerator|AWSNetworkFirewall|"
        "AWSPrivate5G|AmazonApiGateway|AmazonCloudFront|AmazonRoute53|AmazonVPC"
    ),
    "Other": ("AWSGroundStation|AWSRoboMaker|AmazonBraket|AmazonManagedBlockchain|AmazonQLDB"),
    "Security": (
        "AWSCertificateManager|AWSDirectoryService|AWSFMS|AWSSecretsManager|AWSSecurityHub|AWSShield|"
        "AmazonCognito|AmazonCognitoSync|AmazonDetective|AmazonGuardDuty|AmazonInspector|AmazonInspectorV2|"
        "AmazonMacie|AmazonSecurityLake|AmazonVerifiedPermissions|CloudHSM|auditmanager|awskms|awswaf"
    ),
    "Storage": (
        "AWSBackup|AWSElasticDisasterRecovery|AWSStorageGateway|AWSStorageGatewayDeepArchive|AmazonEBS|"
        "AmazonEFS|AmazonFSx|AmazonGlacier|AmazonS3|AmazonS3GlacierDeepArchive|IngestionServiceSnowball|"
        "SnowballExtraDays"
    ),
}
_AZURE = {
    "AI and Machine Learning": (
        "microsoft.botservice|microsoft.cognitiveservices|microsoft.databricks|microsoft.machinelearning|"
        "microsoft.machinelearningservices"
    ),
    "Analytics": (
        "microsoft.datalakeanalytics|microsoft.hdinsight|microsoft.kusto|microsoft.notebooks|"
        "microsoft.streamanalytics|microsoft.synapse"
    ),
    "Compute": (
        "microsoft.avs|microsoft.classiccompute|microsoft.compute|microsoft.containerinstance|"
        "microsoft.containerservice|microsoft.desktopvirtualization|microsoft.serialconsole"
    ),
    "Databases": (
        "microsoft.dbformysql|microsoft.dbforpostgressql|microsoft.documentdb|microsoft.sql|microsoft.sqlvirtualmachine"
    ),
    "Developer Tools": (
        "microsoft.automation|microsoft.devtestlab|microsoft.diagnostics|microsoft.loadtestservice|"
        "microsoft.maps|microsoft.resourcegraph|microsoft.visualstudio"
    ),
    "Identity": ("microsoft.adhybridhealthservice|microsoft.authorization|microsoft.guestconfiguration"),
    "Integration": (
        "microsoft.apimanagement|microsoft.datafactory|microsoft.datashare|microsoft.eventgrid|"
        "microsoft.eventhub|microsoft.logic|microsoft.servicebus|microsoft.servicefabric|"
        "microsoft.servicelinker"
    ),
    "Internet of Things": ("microsoft.digitaltwins|microsoft.iotsecurity|microsoft.mixedreality"),
    "Management and Governance": (
        "microsoft.advisor|microsoft.alertsmanagement|microsoft.blueprint|microsoft.changeanalysis|"
        "microsoft.costmanagement|microsoft.costmanagementexports|microsoft.insights|"
        "microsoft.operationalinsights|microsoft.operationsmanagement|microsoft.policyinsights|"
        "microsoft.recoveryservices|microsoft.resourcehealth|microsoft.resourcenotifications"
    ),
    "Media": ("microsoft.media"),
    "Migration": ("microsoft.datamigration|microsoft.migrate|microsoft.offazure"),
    "Networking": (
        "microsoft.classicnetwork|microsoft.domainregistration|microsoft.network|microsoft.relay|"
        "microsoft.virtual network"
    ),
    "Other": (
        "microsoft.capacity|microsoft.classicsubscription|microsoft.commerce|microsoft.consumption|"
        "microsoft.devices|microsoft.maintenance|microsoft.management|microsoft.marketplacenotifications|"
        "microsoft.marketplaceordering|microsoft.notificationhubs|microsoft.portal|microsoft.resources|"
        "microsoft.saas|microsoft.solutions|microsoft.support"
    ),
    "Security": ("microsoft.keyvault|microsoft.managedidentity|microsoft.security|microsoft.securityinsights"),
    "Storage": (
        "microsoft.cache|microsoft.classicstorage|microsoft.containerregistry|microsoft.datalakestore|"
        "microsoft.storage|microsoft.storagecache|microsoft.storagesync"
    ),
    "Web": ("microsoft.appconfiguration|microsoft.cdn|microsoft.search|microsoft.web"),
}
_GCP = {
    "AI and Machine Learning": (
        "Cloud AutoML|Cloud Data Labeling Service|Cloud Machine Learning Engine|Cloud Natural Language|"
        "Cloud Optimization|Cloud TPU|Cloud Talent Solution|Contact Center AI Insights|Genomics|"
        "Google Click to Deploy Deep Learning VM|Google Cloud Vision OCR On-Prem|Notebooks|Prediction|"
        "Recommendations AI|Speaker ID|Vertex AI"
    ),
    "Analytics": (
        "BigQuery BI Engine|BigQuery Reservation API|Cloud Composer|Cloud Data Fusion|Cloud Dataflow|"
        "Data Catalog|Looker Data Platform SaaS"
    ),
    "Compute": (
        "Anthos|Anthos Config Management|App Engine|Artifact Registry|Cloud Functions|Cloud Run|"
        "Compute Engine|Confidential Computing|Google Quickstart Simple pre-configured Debian VM|"
        "Kubernetes Engine|MultiClusterIngress|Stackdriver Monitoring|Stackdriver Trace|VM Manager|"
        "VMware Engine"
    ),
    "Databases": (
        "BigQuery|Cloud Bigtable|Cloud Memorystore for Memcached|Cloud Memorystore for Redis|Cloud SQL|"
        "Cloud Spanner|Datastream|Firebase Realtime Database"
    ),
    "Developer Tools": (
        "Cloud Build|Cloud Scheduler|Cloud Tasks|Remote Build Execution|Source Repository|Translate|Workflows"
    ),
    "Integration": (
        "API Gateway|Cloud Dialogflow API|Cloud Document AI API|Cloud Document API|Cloud Healthcare|"
        "Cloud Media Translation API|Cloud Pub/Sub|Cloud Speech API|Cloud Text-to-Speech API|"
        "Cloud Video Intelligence API|Cloud Vision API|Custom Search|Directions API|Distance Matrix API|"
        "Game Services API|Geocoding API|Geolocation API|"
        "Google Cloud Platform Apigee team Apigee Developer Portal|Google Maps Mobile SDK|Live Stream API|"
        "Maps Elevation API|Maps Embed API|Maps SDK for Unity|Maps Static API|Places API|"
        "Programmable Search Element|Pub/Sub Lite|Roads API|Street View Static API|Time Zone API|"
        "Transcode API|Transcoder API|Video Stitcher API"
    ),
    "Internet of Things": ("Cloud IoT Core"),
    "Management and Governance": (
        "Anthos Service Mesh|Cloud Logging|Enterprise Agreement|"
        "Google Cloud Platform Financial Services team Datashare|Stackdriver"
    ),
    "Media": ("Zync"),
    "Migration": ("BigQuery Data Transfer Service|Transfer Appliance"),
    "Mobile": ("Firebase|Firebase Hosting|Firebase Test Lab"),
    "Networking": ("Cloud CDN|Cloud DNS|Google Service Control|Networking"),
    "Security": (
        "Actifio GO|BeyondCorp Enterprise|Binary Authorization|Certificate Authority Service|"
        "Cloud Data Loss Prevention|Cloud IDS|Cloud Key Management Service (KMS)|"
        "Container Registry Vulnerability Scanning|Firebase Auth|Identity Platform|On-Demand Scanning|"
        "Secret Manager|Security Command Center|Web Risk|reCAPTCHA Enterprise"
    ),
    "Storage": (
        "Backup for GKE|BigQuery Storage API|Cloud Filestore|Cloud Storage|Dataproc Metastore|"
        "Elastifile Cloud File System|Transfer Service"
    ),
    "Web": ("Cloud Domains"),
}
_OCI = {
    "AI and Machine Learning": "AI_SERVICES|DATA_SCIENCE|GENERATIVE_AI|DIGITAL_ASSISTANT|AI_LANGUAGE|AI_VISION",
    "Analytics": "ANALYTICS|BIG_DATA|DATA_FLOW|DATA_INTEGRATION|DATA_CATALOG|OPENSEARCH",
    "Compute": "COMPUTE|CONTAINER_ENGINE|FUNCTIONS|CONTAINER_INSTANCES|VMWARE",
    "Databases": "DATABASE|MYSQL|NOSQL|AUTONOMOUS_DATABASE|EXADATA|POSTGRESQL|GOLDENGATE",
    "Integration": "ORACLE_STREAMING_SERVICE|STREAMING|INTEGRATION|NOTIFICATIONS|QUEUE|EVENTS|API_GATEWAY",
    "Management and Governance": "TELEMETRY|MONITORING|LOGGING|LOGGING_ANALYTICS|APM|OPERATIONS_INSIGHTS",
    "Networking": "NETWORK|NETWORKING|LOAD_BALANCER|FASTCONNECT|DNS|VCN|NETWORK_FIREWALL|CDN",
    "Security": "KEY_MANAGEMENT|VAULT|CLOUD_GUARD|WAF|BASTION|CERTIFICATES",
    "Identity": "IDENTITY|IAM",
    "Storage": "BLOCK_STORAGE|OBJECTSTORE|OBJECT_STORAGE|FILE_STORAGE|ARCHIVE_STORAGE|STORAGE",
}


def _index(table: dict[str, str]) -> dict[str, str]:
    return {code.strip().lower(): category for category, codes in table.items() for code in codes.split("|")}


_BY_PROVIDER = {"aws": _index(_AWS), "azure": _index(_AZURE), "gcp": _index(_GCP), "oci": _index(_OCI)}


def service_category(provider: str, code: str | None) -> str:
    """The FOCUS ServiceCategory of a provider service code (AWS product code, Azure ConsumedService, GCP
    service description, OCI product/service); `Other` when the code is unknown or missing."""
    if not code:
        return "Other"
    return _BY_PROVIDER[provider].get(code.strip().lower(), "Other")
